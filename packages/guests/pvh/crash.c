/* Prints, then writes through a bad pointer: the panic path reports a crash, and on_crash applies. */
#include "guest.h"

/* Far below RAM (0x80000000): nothing is mapped there in a PVH guest. */
volatile ulong *volatile bad_pointer = (volatile ulong *)0x10;

int main(void)
{
    puts_("about to crash\n");
    *bad_pointer = 1;
    return 0;
}
