/**
 * $RUN_DIR/xenstored/socket: the byte-exact protocol on a Unix stream
 * socket, as C xenstored's posix.c listens.  Whoever can open it is dom0
 * (the run directory is mode 0700, like /var/run/xenstored being root's),
 * so Xen's own clients work with XENSTORED_PATH pointing here.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { DOMID_DOM0 } from '@xenbox/abi';
import { Connection } from './connection.js';
import { ProtocolError, XsStreamReader } from './framing.js';
import type { Xenstored } from './xenstored.js';

export class UnixSocketListener {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly xs: Xenstored,
    readonly path: string,
  ) {
    this.server = createServer((s) => this.accept(s));
  }

  async listen(): Promise<void> {
    // A socket file left by a killed xenstored would make listen() fail with EADDRINUSE.
    if (existsSync(this.path)) unlinkSync(this.path);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.path, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const reader = new XsStreamReader();
    let corked = false;
    const conn = new Connection(
      'unix',
      DOMID_DOM0,
      (bytes) => {
        // Replies and events produced while serving one read leave in one writev.
        if (!corked) {
          corked = true;
          socket.cork();
          process.nextTick(() => {
            corked = false;
            socket.uncork();
          });
        }
        socket.write(bytes);
      },
      (reason) => {
        this.xs.log.info({ conn: conn.id, reason }, 'closing socket connection');
        socket.destroy();
      },
    );
    this.xs.attach(conn);
    socket.on('data', (chunk: Buffer) => {
      let msgs;
      try {
        msgs = reader.push(chunk);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        this.xs.log.warn({ conn: conn.id, why: e.message }, 'malformed input on the socket; dropping the client');
        this.xs.detach(conn);
        socket.destroy();
        return;
      }
      for (const m of msgs) {
        if (conn.closed) break;
        this.xs.handle(conn, m.hdr, m.payload);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.xs.detach(conn);
    });
  }
}
