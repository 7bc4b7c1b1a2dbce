//! A TCP chaos proxy between two real peers (agent and server): listens on an ephemeral
//! loopback port and forwards to an upstream address until told to break the link. While
//! broken, every open connection is cut and new ones are accepted and closed at once, as a
//! failed WAN link looks to the agent. The peers stay real; only the link fails.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct ChaosProxy {
    pub addr: SocketAddr,
    broken: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ChaosProxy {
    /// Starts forwarding `127.0.0.1:<ephemeral>` to `upstream`.
    pub async fn start(upstream: SocketAddr) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr");
        let (broken, _) = watch::channel(false);
        let flag = broken.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                if *flag.borrow() {
                    drop(client);
                    continue;
                }
                let mut cut = flag.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    let mut client = client;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|b| *b) => {}
                    }
                });
            }
        });
        ChaosProxy { addr, broken, task }
    }

    /// Cuts every connection and refuses new ones until [`ChaosProxy::restore_networking`].
    pub fn break_networking(&self) {
        self.broken.send_replace(true);
    }

    /// Forwards again.
    pub fn restore_networking(&self) {
        self.broken.send_replace(false);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
