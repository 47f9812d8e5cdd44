// The Node.js peer: the net module, one event loop, as people write it.
//
//   node node_server.js PORT greeting|echo
//
// greeting: on the first data (or the end of input), reply and close.
// Listens on 127.0.0.1 and prints "ready" once it does.
'use strict';
const net = require('net');

const [port, mode] = process.argv.slice(2);
if (!port || (mode !== 'greeting' && mode !== 'echo')) {
  console.error('usage: node node_server.js PORT greeting|echo');
  process.exit(64);
}
const reply = Buffer.from('Hello from server!\n');

const server = net.createServer((socket) => {
  socket.on('error', () => socket.destroy());
  if (mode === 'echo') {
    socket.pipe(socket);
    return;
  }
  let answered = false;
  const answer = () => {
    if (!answered) {
      answered = true;
      socket.end(reply);
    }
  };
  socket.once('data', answer);
  socket.once('end', answer);
});

server.listen({ host: '127.0.0.1', port: Number(port), backlog: 4096 }, () => console.log('ready'));
