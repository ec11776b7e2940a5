/* Prints, then asks to be powered off (SCHEDOP_shutdown poweroff): on_poweroff applies. */
#include "guest.h"

int main(void)
{
    puts_("powering off\n");
    guest_poweroff();
}
