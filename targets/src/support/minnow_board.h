/* The board interface the minnow harness runs on. */
#ifndef MINNOW_BOARD_H
#define MINNOW_BOARD_H
#include <stdint.h>
void board_puts(const char *s);          /* write a NUL-terminated string to the host */
void board_exit(int status);             /* stop the board; 0 is success */
void board_timer_start(void);            /* start the cost counter */
uint64_t board_timer_read(void);         /* counter units since start (ticks or instructions) */
#endif
