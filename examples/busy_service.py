"""A small stand-in for a production service, to point pyspy-repl at.

It runs a few named worker threads: one crunching numbers (holds the GIL),
one waiting on a queue, one sleeping between "requests", and the main thread
waiting for them, each with some locals worth looking at.
"""
import queue
import sys
import threading
import time


class Order:
    def __init__(self, order_id, items):
        self.order_id = order_id
        self.items = items
        self.total = sum(price for _, price in items)


def crunch(limit):
    primes = []
    candidate = 2
    while True:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
            if len(primes) > limit:
                primes = primes[-10:]
        candidate += 1


def consume(inbox):
    handled = 0
    while True:
        order = inbox.get()
        handled += 1


def handle_request(request_id, payload):
    order = Order(request_id, payload["items"])
    time.sleep(0.5)
    return order.total


def serve():
    request_id = 0
    while True:
        request_id += 1
        handle_request(request_id, {"items": [("tea", 3.5), ("cake", 4.25)], "user": "zoë"})


def main():
    inbox = queue.Queue()
    threads = [
        threading.Thread(target=crunch, args=(10_000,), name="cruncher", daemon=True),
        threading.Thread(target=consume, args=(inbox,), name="consumer", daemon=True),
        threading.Thread(target=serve, name="http-worker", daemon=True),
    ]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    deadline = float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0
    time.sleep(deadline)


if __name__ == "__main__":
    main()
