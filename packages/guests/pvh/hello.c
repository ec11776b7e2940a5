/* Prints a greeting on the console, then idles in WFI (uses no CPU). */
#include "guest.h"

int main(ulong hartid)
{
    puts_("Hello from a xenbox PVH guest on vCPU ");
    putdec(hartid);
    puts_("\n");
    for (;;) asm volatile("wfi");
}
