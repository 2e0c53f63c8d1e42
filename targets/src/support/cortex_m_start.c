/* minnow board support, Cortex-M: the C run-time start every board's reset handler calls
 * (copy .data from flash, zero .bss, enable the FPU). */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

static void minnow_c_runtime(void) {
  uint32_t *src = &_sidata, *dst = &_sdata;
  while (dst < &_edata) *dst++ = *src++;
  for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
#if defined(__ARM_FP)
  *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: enable the FPU */
  __asm volatile("dsb\n\tisb");
#endif
}

