//! The client's outgoing side: the security header it puts on every packet, the queue of
//! encoded datagrams, and the one ACK that waits unencoded at the queue's end until a newer
//! ACK replaces it (README.md#pn-client-ack).

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::proto::Transmit;
use crate::wire::mt::{self, Body, Packet, Security};
use crate::wire::security::Protect;

/// Datagrams waiting for `poll_transmit`; beyond this the oldest is dropped (the caller is
/// expected to drain after every call, so this only bounds a caller that does not).
const MAX_QUEUED_DATAGRAMS: usize = 256;

/// An ACK waiting at the end of the queue, with what its packet header needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingAck {
    pub session_id: u32,
    pub sender_time: u64,
    pub ack: mt::Ack,
    pub to: SocketAddr,
}

#[derive(Debug)]
pub(super) struct TransmitQueue {
    protect: Protect,
    queue: VecDeque<(Vec<u8>, SocketAddr)>,
    /// The newest ACK, queued after everything in `queue` and not yet encoded: a newer ACK
    /// replaces it, so a batch of packets costs one encoded ACK, not one per packet.
    ack: Option<PendingAck>,
}

impl TransmitQueue {
    pub(super) fn new(protect: Protect) -> Self {
        Self {
            protect,
            queue: VecDeque::new(),
            ack: None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.ack.is_none()
    }

    /// Encodes a packet with this client's security header and queues it for `to`.
    pub(super) fn send(
        &mut self,
        session_id: u32,
        sender_time: u64,
        body: Body<'_>,
        to: SocketAddr,
    ) {
        let mut bytes = Vec::new();
        encode(&self.protect, session_id, sender_time, body, &mut bytes);
        // A pending ACK keeps its place before anything queued after it.
        if let Some(ack) = self.ack.take() {
            let mut ack_bytes = Vec::new();
            encode(
                &self.protect,
                ack.session_id,
                ack.sender_time,
                Body::Ack(ack.ack),
                &mut ack_bytes,
            );
            self.push(ack_bytes, ack.to);
        }
        self.push(bytes, to);
    }

    /// Queues `ack` last, replacing an ACK not yet sent: ACKs are cumulative, so the older
    /// one says nothing the newer one does not.
    pub(super) fn replace_ack(&mut self, ack: PendingAck) {
        self.ack = Some(ack);
    }

    /// Appends the next datagram to `buf`.
    pub(super) fn poll(&mut self, buf: &mut Vec<u8>) -> Option<Transmit> {
        let start = buf.len();
        if let Some((bytes, to)) = self.queue.pop_front() {
            buf.extend_from_slice(&bytes);
            return Some(Transmit::datagram(to, bytes.len()));
        }
        let ack = self.ack.take()?;
        encode(
            &self.protect,
            ack.session_id,
            ack.sender_time,
            Body::Ack(ack.ack),
            buf,
        );
        Some(Transmit::datagram(ack.to, buf.len() - start))
    }

    fn push(&mut self, bytes: Vec<u8>, to: SocketAddr) {
        if self.queue.len() >= MAX_QUEUED_DATAGRAMS {
            self.queue.pop_front();
        }
        self.queue.push_back((bytes, to));
    }
}

/// Appends a packet with the security header `protect` makes.
fn encode(protect: &Protect, session_id: u32, sender_time: u64, body: Body<'_>, out: &mut Vec<u8>) {
    Packet {
        // Replaced by the header `protect` makes.
        security: Security::None,
        session_id,
        sender_time,
        body,
    }
    .append_protected(out, protect);
}
