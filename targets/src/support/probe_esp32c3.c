/* minnow board support for the ESP32-C3 flashed through its built-in USB-JTAG with probe-rs:
 * the ELF becomes an ESP-IDF app image (probe-rs writes it with the second-stage bootloader
 * and the partition table), code runs from flash through the cache at IROM, weights from
 * DROM, data in DRAM. The bootloader has loaded .data; this start-up stops the watchdogs
 * the ROM and the bootloader leave running, starts the core's cycle counter (the machine
 * performance counter PCCR: the C3 has no mcycle), zeroes .bss and runs the harness, which
 * leaves its results in the minnow_results block and stops at minnow_checkpoint, where the
 * probe's breakpoint reads them. Follows probe_riscv_common.c. */
extern uint32_t _sbss, _ebss;

/* The application description the ESP-IDF image format starts its flash data with
 * (esp_app_desc_t, 256 bytes): the magic word and zeros; the MMU page size comes from its
 * 64 KiB-aligned place. */
struct minnow_app_desc {
  uint32_t magic_word, secure_version, reserved1[2];
  char version[32], project_name[32], time[16], date[16], idf_ver[32];
  uint8_t app_elf_sha256[32];
  uint16_t min_efuse_blk_rev_full, max_efuse_blk_rev_full;
  uint8_t mmu_page_size, reserved3[3];
  uint32_t reserved2[18];
};
__attribute__((used, section(".flash.appdesc"))) const struct minnow_app_desc esp_app_desc = {
    .magic_word = 0xABCD5432u,
    .version = "minnow",
    .project_name = "minnow-harness",
    .idf_ver = "none",
    .max_efuse_blk_rev_full = 0xFFFF,
};

/* The C3's mtvec is vectored only: exceptions enter at its base, minnow_trap's 256-byte
 * alignment. */
__attribute__((naked, section(".text.init"))) void _start(void) { __asm volatile(MINNOW_RISCV_ENTER); }

#define MINNOW_REG(address) (*(volatile uint32_t *)(address))
/* RTC_CNTL and TIMG0/TIMG1 (ESP32-C3 technical reference, "Watchdog Timers"). */
#define RTC_CNTL 0x60008000u
#define WDT_KEY 0x50D83AA1u
#define SWD_KEY 0x8F1D312Au

static void minnow_stop_watchdogs(void) {
  MINNOW_REG(RTC_CNTL + 0xA8) = WDT_KEY; /* RTC_CNTL_WDTWPROTECT */
  MINNOW_REG(RTC_CNTL + 0x90) = 0;       /* RTC_CNTL_WDTCONFIG0: off */
  MINNOW_REG(RTC_CNTL + 0xA8) = 0;
  MINNOW_REG(RTC_CNTL + 0xB0) = SWD_KEY;      /* RTC_CNTL_SWD_WPROTECT */
  MINNOW_REG(RTC_CNTL + 0xAC) |= 1u << 31;    /* RTC_CNTL_SWD_CONF: feed itself */
  MINNOW_REG(RTC_CNTL + 0xB0) = 0;
  for (uint32_t timg = 0x6001F000u; timg <= 0x60020000u; timg += 0x1000u) {
    MINNOW_REG(timg + 0x64) = WDT_KEY; /* TIMG_WDTWPROTECT */
    MINNOW_REG(timg + 0x48) = 0;       /* TIMG_WDTCONFIG0: off */
    MINNOW_REG(timg + 0x64) = 0;
  }
}

/* PCER (0x7E0) selects the event, cycles; PCMR (0x7E1) enables counting; PCCR (0x7E2) is the
 * 32-bit count, which a difference of less than 2^32 cycles reads right across a wrap. */
static uint32_t minnow_t0;
static uint32_t minnow_pccr(void) {
  uint32_t count;
  __asm volatile("csrr %0, 0x7e2" : "=r"(count));
  return count;
}
void board_timer_start(void) { minnow_t0 = minnow_pccr(); }
uint64_t board_timer_read(void) { return (uint32_t)(minnow_pccr() - minnow_t0); }

__attribute__((used)) void minnow_board_main(void) {
  minnow_stop_watchdogs();
  __asm volatile("csrw 0x7e0, %0" ::"r"(1));
  __asm volatile("csrw 0x7e1, %0" ::"r"(1));
  for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  board_exit(main());
}
