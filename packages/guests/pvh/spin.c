/* Prints once, then burns CPU forever: for scheduler tests and xl destroy. */
#include "guest.h"

volatile ulong counter;

int main(void)
{
    puts_("spinning\n");
    for (;;) counter++;
}
