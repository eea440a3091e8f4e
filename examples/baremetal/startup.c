/*
 * The start of the firmware on a Cortex-M4F (QEMU's mps2-an386 board):
 * the vector table, a reset handler that enables the FPU, copies .data
 * from flash and zeroes .bss (symbols from mps2-an386.ld) before main,
 * and the semihosting calls of semihost.h. A fault prints its name and
 * ends the run with status 3, so a test sees it instead of a hang.
 */
#include <stdint.h>
#include <string.h>

#include "semihost.h"

int main(void);

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

/* a semihosting call: operation op, argument arg, through BKPT 0xAB */
static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_puts(const char *s)
{
    semihost(0x04, s);
}

void sh_exit(int code)
{
    /* SYS_EXIT_EXTENDED (0x20): ADP_Stopped_ApplicationExit with the
     * status, which QEMU exits with (plain SYS_EXIT has no status on
     * 32-bit Arm) */
    static uint32_t block[2];
    block[0] = 0x20026;
    block[1] = (uint32_t)code;
    semihost(0x20, block);
    for (;;)
        ;
}

static void fault(void)
{
    sh_puts("fault\n");
    sh_exit(3);
}

void reset(void) __attribute__((noreturn));
void reset(void)
{
    /* CPACR: full access to coprocessors 10 and 11, the FPU */
    *(volatile uint32_t *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    memcpy(__data_start, __data_load, (size_t)((char *)__data_end - (char *)__data_start));
    memset(__bss_start, 0, (size_t)((char *)__bss_end - (char *)__bss_start));
    sh_exit(main());
}

/* initial stack pointer, reset, then NMI .. SysTick */
__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(uintptr_t)__stack_top, reset, fault, fault, fault, fault, fault};
