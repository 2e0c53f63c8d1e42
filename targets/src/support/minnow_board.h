/* The board interface the minnow harness runs on. */
#ifndef MINNOW_BOARD_H
#define MINNOW_BOARD_H
#include <stdint.h>
void board_puts(const char *s);          /* write a NUL-terminated string to the host */
void board_exit(int status);             /* stop the board; 0 is success */
void board_timer_start(void);            /* start the cost counter */
uint64_t board_timer_read(void);         /* counter units since start (ticks, instructions, cycles) */
#ifdef MINNOW_RESULTS_BLOCK
/* Real boards: the harness's results block (see minnow_targets::harness::ResultsBlock). */
void minnow_results_done(int status);    /* the last vector is in: mark the block done and stop */
void minnow_results_fault(void);         /* a fault or trap: mark the block faulted and stop */
#endif
#endif
