"""An interactive flame graph as one self-contained SVG.

Laid out the way flamegraph.pl readers expect: the root (``all``) at the
bottom, callees stacked above, siblings in alphabetical order, widths
proportional to samples, warm colours hashed from the function name so a
function keeps its colour across graphs.  The embedded script adds zoom on
click, reset, regex search with the matched share of samples, and a detail
line on hover; every frame also carries a ``<title>`` tooltip, so the file
still says everything when scripts are off (e.g. in an ``<img>``).
"""
from __future__ import annotations

import zlib
from xml.sax.saxutils import escape

from ..profile import Profile
from .base import Writer

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time: it costs start-up
    from typing import Dict, IO, List, Optional, Tuple


_FRAME_HEIGHT = 16
_FONT_SIZE = 12
_FONT_WIDTH = 0.59  # average glyph width as a fraction of the font size
_XPAD = 10


class _Node:
    __slots__ = ("label", "total", "children")

    def __init__(self, label: str) -> None:
        self.label = label
        self.total = 0
        self.children: Dict[str, "_Node"] = {}


def build_tree(stacks: Dict[Tuple[str, ...], int], root_label: str = "all") -> _Node:
    """Merge label paths into a tree whose node totals include their descendants."""
    root = _Node(root_label)
    for path, count in stacks.items():
        root.total += count
        node = root
        for label in path:
            child = node.children.get(label)
            if child is None:
                child = node.children[label] = _Node(label)
            child.total += count
            node = child
    return root


def frame_colour(label: str) -> str:
    """A warm colour from a hash of the function part of the label (stable across runs)."""
    function = label.split(" (", 1)[0]
    digest = zlib.crc32(function.encode("utf-8", "replace"))
    a, b, c = digest & 0xFF, (digest >> 8) & 0xFF, (digest >> 16) & 0xFF
    return "rgb(%d,%d,%d)" % (205 + a * 50 // 255, 40 + b * 180 // 255, 20 + c * 50 // 255)


def _fit(label: str, width: float) -> str:
    chars = int(width / (_FONT_SIZE * _FONT_WIDTH))
    if chars < 3:
        return ""
    return label if len(label) <= chars else label[:chars - 2] + ".."


def _attr(text: str) -> str:
    return escape(text, {'"': "&quot;"})


class FlamegraphWriter(Writer):
    name = "flamegraph"
    extension = ".svg"
    binary = False
    description = "interactive flame graph (SVG)"

    def __init__(self, profile: Optional[Profile] = None, *, title: str = "Flame Graph",
                 subtitle: Optional[str] = None, width: int = 1200, min_width: float = 0.1) -> None:
        super().__init__(profile)
        self.title = title
        self.subtitle = subtitle
        self.width = width
        self.min_width = min_width  # px; narrower frames are left out, as flamegraph.pl does

    def render(self, profile: Profile, stream: IO) -> None:
        root = build_tree(profile.collapsed())
        frames, depth = self._layout(root)
        stream.write(self._svg(root, frames, depth, self._subtitle(profile)))

    def _subtitle(self, profile: Profile) -> str:
        if self.subtitle is not None:
            return self.subtitle
        parts = []
        pids = profile.pids
        if len(pids) == 1:
            commands = {info.command_line for info in profile.threads.values() if info.command_line}
            parts.append("pid %d%s" % (pids[0], (": " + sorted(commands)[0]) if commands else ""))
        elif pids:
            parts.append("%d processes" % len(pids))
        parts.append("{:,} samples".format(profile.samples))
        if profile.duration_ns:
            parts.append("%.2f s" % (profile.duration_ns / 1e9))
        if profile.errors:
            parts.append("{:,} errors".format(profile.errors))
        return ", ".join(parts)

    def _layout(self, root: _Node) -> Tuple[List[Tuple[_Node, int, float, float]], int]:
        """(node, depth, x, width) for each drawn node, depth-first, iteratively (deep stacks)."""
        inner = self.width - 2 * _XPAD
        scale = inner / root.total if root.total else 0.0
        drawn: List[Tuple[_Node, int, float, float]] = []
        max_depth = 0
        todo = [(root, 0, float(_XPAD))]
        while todo:
            node, depth, x = todo.pop()
            width = node.total * scale if root.total else float(inner)
            if node is not root and width < self.min_width:
                continue
            drawn.append((node, depth, x, width))
            max_depth = max(max_depth, depth)
            children = [node.children[k] for k in sorted(node.children)]
            offsets = []
            cx = x
            for child in children:
                offsets.append((child, depth + 1, cx))
                cx += child.total * scale
            todo.extend(reversed(offsets))
        return drawn, max_depth

    def _svg(self, root: _Node, drawn, max_depth: int, subtitle: str) -> str:
        top = _FONT_SIZE * 4 + 8
        bottom = _FONT_SIZE * 2 + 10
        height = top + (max_depth + 1) * _FRAME_HEIGHT + bottom
        total = root.total or 1
        out = [
            '<?xml version="1.0" standalone="no"?>\n',
            '<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
            'viewBox="0 0 %d %d" onload="init(evt)">\n' % (self.width, height, self.width, height),
            "<defs><linearGradient id=\"bg\" y1=\"0\" y2=\"1\" x1=\"0\" x2=\"0\">"
            '<stop stop-color="#eeeeee" offset="5%"/><stop stop-color="#eeeeb0" offset="95%"/>'
            "</linearGradient></defs>\n",
            "<style type=\"text/css\">\n"
            "text { font-family: Verdana, sans-serif; font-size: %dpx; fill: rgb(0,0,0); }\n"
            "#title { text-anchor: middle; font-size: %dpx; }\n"
            "#subtitle { text-anchor: middle; fill: rgb(90,90,90); }\n"
            "#search, #matched { text-anchor: end; }\n"
            "#search, #unzoom { cursor: pointer; }\n"
            "#search:hover, #unzoom:hover, #search.active { fill: rgb(200,0,200); }\n"
            ".frame { cursor: pointer; }\n"
            ".frame text { pointer-events: none; }\n"
            ".frame:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }\n"
            ".parent { opacity: 0.5; }\n"
            ".hide { display: none; }\n"
            "</style>\n" % (_FONT_SIZE, _FONT_SIZE + 5),
            "<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n" % (
                _SCRIPT.replace("@XPAD@", str(_XPAD)).replace("@INNER@", str(self.width - 2 * _XPAD))
                .replace("@FONT@", str(_FONT_SIZE)).replace("@GLYPH@", str(_FONT_WIDTH))),
            '<rect x="0" y="0" width="%d" height="%d" fill="url(#bg)"/>\n' % (self.width, height),
            '<text id="title" x="%d" y="%d">%s</text>\n' % (self.width // 2, _FONT_SIZE + 8,
                                                            escape(self.title)),
            '<text id="subtitle" x="%d" y="%d">%s</text>\n' % (self.width // 2, _FONT_SIZE * 2 + 12,
                                                               escape(subtitle)),
            '<text id="unzoom" class="hide" x="%d" y="%d">Reset Zoom</text>\n' % (_XPAD, _FONT_SIZE * 3 + 12),
            '<text id="search" x="%d" y="%d">Search</text>\n' % (self.width - _XPAD, _FONT_SIZE * 3 + 12),
            '<text id="details" x="%d" y="%d"> </text>\n' % (_XPAD, height - _FONT_SIZE + 2),
            '<text id="matched" x="%d" y="%d"> </text>\n' % (self.width - _XPAD, height - _FONT_SIZE + 2),
            '<g id="frames">\n',
        ]
        base = top + max_depth * _FRAME_HEIGHT  # y of the root row
        for node, depth, x, width in drawn:
            y = base - depth * _FRAME_HEIGHT
            info = "{} ({:,} samples, {:.2f}%)".format(node.label, node.total, 100.0 * node.total / total)
            out.append(
                '<g class="frame"><title>%s</title>'
                '<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" rx="2" ry="2"/>'
                '<text x="%.2f" y="%d">%s</text></g>\n' % (
                    escape(info), x, y, width, _FRAME_HEIGHT - 1, frame_colour(node.label),
                    x + 3, y + _FRAME_HEIGHT - 4, escape(_fit(node.label, width))))
        out.append("</g>\n</svg>\n")
        return "".join(out)


# The viewer.  Geometry of every frame is read once from its rect; zooming
# rescales the frames inside the clicked one, stretches its ancestors and
# hides the rest; search paints matches and reports the union of their widths.
_SCRIPT = r"""
"use strict";
var XPAD = @XPAD@, INNER = @INNER@, FONT = @FONT@, GLYPH = @GLYPH@;
var MATCH_FILL = "rgb(230,0,230)";
var frames = [], details, unzoomButton, searchButton, matchedText, searchTerm = null;

function init(evt) {
  details = document.getElementById("details").firstChild;
  unzoomButton = document.getElementById("unzoom");
  searchButton = document.getElementById("search");
  matchedText = document.getElementById("matched").firstChild;
  var groups = document.getElementById("frames").getElementsByTagName("g");
  for (var i = 0; i < groups.length; i++) {
    var g = groups[i], rect = g.getElementsByTagName("rect")[0];
    var info = g.getElementsByTagName("title")[0].textContent;
    var cut = info.lastIndexOf(" (");
    var f = {g: g, rect: rect, text: g.getElementsByTagName("text")[0],
             name: cut > 0 ? info.substring(0, cut) : info, info: info,
             x: parseFloat(rect.getAttribute("x")), w: parseFloat(rect.getAttribute("width")),
             y: parseFloat(rect.getAttribute("y")), fill: rect.getAttribute("fill")};
    frames.push(f);
    g.addEventListener("click", zoomHandler(f));
    g.addEventListener("mouseover", hoverHandler(f));
    g.addEventListener("mouseout", function () { details.nodeValue = " "; });
  }
  unzoomButton.addEventListener("click", unzoom);
  searchButton.addEventListener("click", searchPrompt);
  window.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && (e.key === "f" || e.key === "F")) {
      e.preventDefault();
      searchPrompt();
    } else if (e.key === "Escape") {
      clearSearch();
    }
  });
}

function zoomHandler(f) { return function () { zoom(f); }; }
function hoverHandler(f) { return function () { details.nodeValue = "Function: " + f.info; }; }

function place(f, x, w) {
  f.rect.setAttribute("x", x.toFixed(2));
  f.rect.setAttribute("width", w.toFixed(2));
  f.text.setAttribute("x", (x + 3).toFixed(2));
  var chars = Math.floor(w / (FONT * GLYPH));
  f.text.textContent = chars < 3 ? "" :
    (f.name.length <= chars ? f.name : f.name.substring(0, chars - 2) + "..");
}

function zoom(target) {
  var eps = 1e-6, scale = INNER / target.w, left = target.x, right = target.x + target.w;
  for (var i = 0; i < frames.length; i++) {
    var f = frames[i];
    f.g.classList.remove("hide");
    f.g.classList.remove("parent");
    if (f.y > target.y) {  // rows below are shallower: ancestors span the target
      if (f.x <= left + eps && f.x + f.w >= right - eps) {
        f.g.classList.add("parent");
        place(f, XPAD, INNER);
      } else {
        f.g.classList.add("hide");
      }
    } else if (f.x >= left - eps && f.x + f.w <= right + eps) {
      place(f, XPAD + (f.x - left) * scale, f.w * scale);
    } else {
      f.g.classList.add("hide");
    }
  }
  unzoomButton.classList.remove("hide");
}

function unzoom() {
  for (var i = 0; i < frames.length; i++) {
    var f = frames[i];
    f.g.classList.remove("hide");
    f.g.classList.remove("parent");
    place(f, f.x, f.w);
  }
  unzoomButton.classList.add("hide");
}

function searchPrompt() {
  if (searchTerm !== null) { clearSearch(); return; }
  var term = window.prompt("Search for (regular expression):", "");
  if (term) { search(term); }
}

function search(term) {
  var re;
  try { re = new RegExp(term); } catch (err) { window.alert("Bad regular expression: " + err); return; }
  var spans = [];
  for (var i = 0; i < frames.length; i++) {
    var f = frames[i];
    if (re.test(f.name)) {
      f.rect.setAttribute("fill", MATCH_FILL);
      spans.push([f.x, f.x + f.w]);
    } else {
      f.rect.setAttribute("fill", f.fill);
    }
  }
  spans.sort(function (a, b) { return a[0] - b[0]; });
  var covered = 0, end = -Infinity;
  for (var j = 0; j < spans.length; j++) {
    var s = Math.max(spans[j][0], end);
    if (spans[j][1] > s) { covered += spans[j][1] - s; }
    end = Math.max(end, spans[j][1]);
  }
  searchTerm = term;
  searchButton.classList.add("active");
  searchButton.firstChild.nodeValue = "Reset Search";
  matchedText.nodeValue = "Matched: " + (100 * covered / INNER).toFixed(1) + "%";
}

function clearSearch() {
  for (var i = 0; i < frames.length; i++) { frames[i].rect.setAttribute("fill", frames[i].fill); }
  searchTerm = null;
  searchButton.classList.remove("active");
  searchButton.firstChild.nodeValue = "Search";
  matchedText.nodeValue = " ";
}
"""
