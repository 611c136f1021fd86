//! statuslab's server tested through the wire: raw HTTP/1.1 sockets, an h2 client, a WebSocket
//! client and the system curl, all against a real server on an OS-assigned port.

mod contract;
mod corpus;
mod curl;
mod edge;
mod expiry;
mod faults;
mod h2;
mod health;
mod hostile;
mod hostile_pending;
mod httpbin;
mod layers;
mod metrics;
mod options;
mod page;
mod probe;
mod probe_nginx;
mod protocol;
mod raw;
mod report;
mod shutdown;
mod state;
mod support;
mod table;
mod testing;
mod websocket;
