// Small network probes that tests run inside network namespaces with
// `ip netns exec NS node net-probe.mjs MODE …`. Plain Node, no dependencies.
//
//   listen-tcp ADDRESS PORT REPLY   accept connections, send REPLY, close; print
//                                   {"event":"connection","from":…} per client
//   listen-udp ADDRESS PORT         print {"event":"datagram","from":…,"text":…}
//   connect-tcp ADDRESS PORT MS [LOCAL]
//                                   print what the server sends; exit 1 on
//                                   error or after MS milliseconds; LOCAL
//                                   picks the source address
//   send-udp ADDRESS PORT TEXT      send one datagram
// Listeners print {"event":"listening"} once ready.
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode, address, portText, extra, local] = process.argv.slice(2);
const port = Number(portText);
const print = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);

if (mode === 'listen-tcp') {
  const server = createServer((socket) => {
    print({ event: 'connection', from: socket.remoteAddress });
    socket.end(extra ?? 'hello');
  });
  server.listen(port, address, () => print({ event: 'listening' }));
} else if (mode === 'listen-udp') {
  const socket = createSocket('udp4');
  socket.on('message', (message, remote) => print({ event: 'datagram', from: remote.address, text: message.toString() }));
  socket.bind(port, address, () => print({ event: 'listening' }));
} else if (mode === 'connect-tcp') {
  const socket = connect({ host: address, port, localAddress: local });
  const timer = setTimeout(() => {
    process.stderr.write(`timed out after ${extra} ms connecting to ${address}:${port}\n`);
    process.exit(1);
  }, Number(extra ?? 3000));
  let received = '';
  socket.on('data', (chunk) => {
    received += chunk.toString();
  });
  socket.on('end', () => {
    clearTimeout(timer);
    process.stdout.write(received);
    process.exit(0);
  });
  socket.on('error', (error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  });
} else if (mode === 'send-udp') {
  const socket = createSocket('udp4');
  socket.send(extra ?? 'ping', port, address, (error) => {
    socket.close();
    process.exit(error ? 1 : 0);
  });
} else {
  process.stderr.write(`unknown mode "${mode}"\n`);
  process.exit(2);
}
