/* minnow board support for the host: standard output, no instruction counter. */
#include <stdio.h>
#include <stdlib.h>
#include "minnow_board.h"

void board_puts(const char *s) { fputs(s, stdout); }
void board_exit(int status) { fflush(stdout); exit(status); }
void board_timer_start(void) {}
uint64_t board_timer_read(void) { return 0; }
