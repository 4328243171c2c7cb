/* Blocking C code for the native-frame tests, loaded with ctypes (no Python headers needed,
 * so one build serves every interpreter of the matrix).
 *
 *   nb_block_on_mutex()       pthread_mutex_lock on a mutex that is never released
 *   nb_call_back(cb)          calls a Python callback (which blocks) from C
 *   nb_start_c_thread()       pthread_create a thread that never touches Python; returns its tid
 *   nb_block_in_signal()      raises SIGUSR1 at itself; the handler blocks in nanosleep forever
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static volatile long c_thread_tid = 0;

__attribute__((noinline)) void nb_block_on_mutex(void) {
    pthread_mutex_trylock(&held);      /* take it if free: the second lock then blocks */
    pthread_mutex_lock(&held);
}

typedef int (*callback_t)(int);

__attribute__((noinline)) int nb_call_back(callback_t cb) {
    int r = cb(41);
    return r + 1;
}

__attribute__((noinline)) static void c_thread_wait(void) {
    for (;;) {
        struct timespec ts = {1000, 0};
        nanosleep(&ts, NULL);
    }
}

static void *c_thread_main(void *arg) {
    (void)arg;
    c_thread_tid = syscall(SYS_gettid);
    c_thread_wait();
    return NULL;
}

long nb_start_c_thread(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, c_thread_main, NULL) != 0)
        return -1;
    while (c_thread_tid == 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return c_thread_tid;
}

__attribute__((noinline)) static void handler_wait(void) {
    for (;;) {
        struct timespec ts = {1000, 0};
        nanosleep(&ts, NULL);
    }
}

static void on_usr1(int sig) {
    (void)sig;
    handler_wait();
}

__attribute__((noinline)) void nb_block_in_signal(void) {
    struct sigaction sa;
    sigset_t set;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1);
}
