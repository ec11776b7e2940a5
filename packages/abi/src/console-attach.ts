/**
 * How `xl console` attaches to a guest's console through xenconsoled
 * ($RUN_DIR/console/xenconsoled.sock, a Unix stream socket).
 *
 *   client -> "ATTACH <domid>\n"
 *   server -> "OK <name>\n"  then the console's recent output, then live output
 *          or "ERR <ERRNO> <message>\n" and close
 *   client -> keyboard bytes, forwarded to the guest
 *
 * (In Xen, `xl console` runs the xenconsole client, which maps the console
 * ring itself; here the daemon is the one place that holds guest consoles.)
 */
export const CONSOLE_ATTACH_VERB = 'ATTACH';
/** Ctrl-] detaches, as in xl console / xenconsole. */
export const CONSOLE_ESCAPE_BYTE = 0x1d;
