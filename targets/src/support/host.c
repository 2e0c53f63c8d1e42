/* minnow board support for the host: standard output, the monotonic clock in nanoseconds. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "minnow_board.h"

static uint64_t board_started;

static uint64_t board_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void board_puts(const char *s) { fputs(s, stdout); }
void board_exit(int status) { fflush(stdout); exit(status); }
void board_timer_start(void) { board_started = board_now(); }
uint64_t board_timer_read(void) { return board_now() - board_started; }
