/**
 * `xl console DOMAIN`: attach this terminal to a guest's console through
 * xenconsoled.  Ctrl-] detaches (xenconsole's escape).  Without a terminal
 * (scripts, tests) stdin and stdout are simply joined to the console.
 */
import { connect } from 'node:net';
import { CONSOLE_ATTACH_VERB, CONSOLE_ESCAPE_BYTE, XenError, type DomId } from '@xenbox/abi';

export interface ConsoleIo {
  input: NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  output: NodeJS.WritableStream;
}

/** Attach; resolves when the user detaches or the console goes away. */
export function attachConsole(socketPath: string, domid: DomId, io: ConsoleIo = { input: process.stdin, output: process.stdout }): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let head = Buffer.alloc(0);
    let attached = false;
    const raw = io.input.isTTY && io.input.setRawMode ? io.input.setRawMode.bind(io.input) : null;
    const finish = (err?: Error) => {
      raw?.(false);
      io.input.removeListener('data', onInput);
      io.input.pause();
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onInput = (chunk: Buffer) => {
      const esc = chunk.indexOf(CONSOLE_ESCAPE_BYTE);
      if (esc >= 0) {
        if (esc > 0) sock.write(chunk.subarray(0, esc));
        finish();
        return;
      }
      sock.write(chunk);
    };
    sock.on('error', (e) => finish(new XenError('ECONNREFUSED', `cannot reach xenconsoled at ${socketPath}: ${e.message}`)));
    sock.on('close', () => finish());
    sock.on('connect', () => sock.write(`${CONSOLE_ATTACH_VERB} ${domid}\n`));
    sock.on('data', (chunk: Buffer) => {
      if (attached) {
        io.output.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const nl = head.indexOf(0x0a);
      if (nl < 0) return;
      const line = head.subarray(0, nl).toString('latin1');
      if (!line.startsWith('OK ')) {
        const [, errno, ...msg] = line.split(' ');
        finish(new XenError((errno as XenError['errno']) ?? 'EIO', msg.join(' ') || line));
        return;
      }
      attached = true;
      raw?.(true);
      io.input.on('data', onInput);
      // Without a terminal, the end of input ends the session (a script piping keys in).
      if (!raw) io.input.once('end', () => finish());
      io.input.resume();
      if (head.length > nl + 1) io.output.write(head.subarray(nl + 1));
    });
  });
}
