//! quinn's handshake, with the 1-RTT keys taken over: [`SealServerConfig`] wraps quinn's
//! rustls server config, and each connection's [`SealSession`] wraps its rustls session. When
//! rustls produces the 1-RTT keys (and each next generation's), the session captures them,
//! builds the connection's quicseal flows, and gives quinn passthrough keys that hold no key
//! bytes: sealing writes a stamp naming the flow where the tag goes, so the socket knows which
//! flow seals the packet; opening accepts only the marker the socket writes over the tag of
//! a packet it opened with that generation's keys, so quinn's key-phase decisions stay its
//! own and a packet the socket could not open fails in quinn as it would with real keys.
//! Initial and Handshake keys are rustls's, untouched. Should the capture ever not match,
//! the session hands quinn rustls's own keys: the connection goes on, protected by ring.

use std::any::Any;
use std::sync::Arc;

use bytes::BytesMut;
use quicseal::{CipherSuite, FlowConfig, RxFlow, TxFlow};
use quinn::ConnectionId;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::crypto::{
    self, CryptoError, ExportKeyingMaterialError, HeaderKey, KeyPair, Keys, PacketKey,
    UnsupportedVersion,
};
use quinn_proto::TransportError;
use quinn_proto::transport_parameters::TransportParameters;

use crate::capture::{OneRttKeys, capture, next_generation, provider};
use crate::registry::{Flow, Registry, TAG_LEN};

/// A quinn server crypto config whose connections' 1-RTT packets quicseal protects, through
/// the socket that shares `registry` ([`crate::SealedSocket`]).
pub struct SealServerConfig {
    inner: Arc<QuicServerConfig>,
    offload: OffloadConfig,
}

/// A quinn client crypto config whose connections' 1-RTT packets quicseal protects, through
/// the socket that shares `registry` ([`crate::SealedSocket`]).
pub struct SealClientConfig {
    inner: Arc<QuicClientConfig>,
    offload: OffloadConfig,
}

/// What the sessions of either config share.
#[derive(Clone)]
struct OffloadConfig {
    registry: Arc<Registry>,
    /// The confidentiality limit told to quinn, if not the suite's.
    confidentiality_limit: Option<u64>,
}

impl OffloadConfig {
    fn new(registry: Arc<Registry>) -> OffloadConfig {
        OffloadConfig {
            registry,
            confidentiality_limit: None,
        }
    }

    fn session(
        &self,
        inner: Box<dyn crypto::Session>,
        params: &TransportParameters,
    ) -> SealSession {
        let mut ours = Vec::new();
        params.write(&mut ours);
        SealSession {
            inner,
            config: self.clone(),
            ours: Parameters::parse(&ours),
            key_changes: 0,
            offload: None,
        }
    }
}

/// The provider's rustls config builder, for TLS 1.3 only.
fn tls13<S: rustls::ConfigSide>(
    builder: rustls::ConfigBuilder<S, rustls::WantsVersions>,
) -> rustls::ConfigBuilder<S, rustls::WantsVerifier> {
    builder
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the capturing provider's suites are TLS 1.3 suites")
}

/// ring's AES-128-GCM for QUIC: Initial packets use it whatever the handshake chooses
/// (RFC 9001 §5.2).
fn initial_suite() -> rustls::quic::Suite {
    rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|suite| suite.quic_suite())
        .expect("ring's AES-128-GCM is a TLS 1.3 suite with QUIC")
}

impl SealServerConfig {
    /// `config` is a rustls server config built on [`provider`]'s capturing suites (see
    /// [`SealServerConfig::rustls_builder`]). Initial packets are protected with ring's
    /// AES-128-GCM, as RFC 9001 §5.2 fixes, whichever suites the handshake may choose.
    pub fn new(config: rustls::ServerConfig, registry: Arc<Registry>) -> SealServerConfig {
        let inner = QuicServerConfig::with_initial(Arc::new(config), initial_suite())
            .expect("AES-128-GCM is QUIC's initial suite");
        SealServerConfig {
            inner: Arc::new(inner),
            offload: OffloadConfig::new(registry),
        }
    }

    /// A rustls server config builder on the capturing provider, offering `suites`.
    pub fn rustls_builder(
        suites: &[CipherSuite],
    ) -> rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier> {
        tls13(rustls::ServerConfig::builder_with_provider(provider(
            suites,
        )))
    }

    /// Tells quinn this confidentiality limit instead of the suite's. quinn updates its keys
    /// 10 000 packets before the limit, so `10_000 + n` makes it update every `n` packets: a
    /// lever for tests. quicseal's flows keep the suite's limits.
    pub fn set_confidentiality_limit(&mut self, limit: u64) {
        self.offload.confidentiality_limit = Some(limit);
    }
}

impl SealClientConfig {
    /// `config` is a rustls client config built on [`provider`]'s capturing suites (see
    /// [`SealClientConfig::rustls_builder`]).
    pub fn new(config: rustls::ClientConfig, registry: Arc<Registry>) -> SealClientConfig {
        let inner = QuicClientConfig::with_initial(Arc::new(config), initial_suite())
            .expect("AES-128-GCM is QUIC's initial suite");
        SealClientConfig {
            inner: Arc::new(inner),
            offload: OffloadConfig::new(registry),
        }
    }

    /// A rustls client config builder on the capturing provider, offering `suites`.
    pub fn rustls_builder(
        suites: &[CipherSuite],
    ) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
        tls13(rustls::ClientConfig::builder_with_provider(provider(
            suites,
        )))
    }

    /// As [`SealServerConfig::set_confidentiality_limit`].
    pub fn set_confidentiality_limit(&mut self, limit: u64) {
        self.offload.confidentiality_limit = Some(limit);
    }
}

impl crypto::ClientConfig for SealClientConfig {
    fn start_session(
        self: Arc<Self>,
        version: u32,
        server_name: &str,
        params: &TransportParameters,
    ) -> Result<Box<dyn crypto::Session>, quinn::ConnectError> {
        let inner = Arc::clone(&self.inner).start_session(version, server_name, params)?;
        Ok(Box::new(self.offload.session(inner, params)))
    }
}

impl crypto::ServerConfig for SealServerConfig {
    fn initial_keys(
        &self,
        version: u32,
        dst_cid: &ConnectionId,
    ) -> Result<Keys, UnsupportedVersion> {
        self.inner.initial_keys(version, dst_cid)
    }

    fn retry_tag(&self, version: u32, orig_dst_cid: &ConnectionId, packet: &[u8]) -> [u8; 16] {
        self.inner.retry_tag(version, orig_dst_cid, packet)
    }

    fn start_session(
        self: Arc<Self>,
        version: u32,
        params: &TransportParameters,
    ) -> Box<dyn crypto::Session> {
        let inner = Arc::clone(&self.inner).start_session(version, params);
        Box::new(self.offload.session(inner, params))
    }
}

/// A connection's rustls session, its 1-RTT keys handed to quicseal.
pub struct SealSession {
    inner: Box<dyn crypto::Session>,
    config: OffloadConfig,
    /// What this side's transport parameters say.
    ours: Parameters,
    /// Key changes `write_handshake` has returned: the first is Handshake, the second 1-RTT.
    key_changes: u8,
    offload: Option<Offload>,
}

/// A connection quicseal protects.
struct Offload {
    flow: Arc<Flow>,
    /// The first generation's keys, whose header keys every later generation keeps.
    first: OneRttKeys,
    generation: u64,
    /// What the passthrough keys tell quinn, read from rustls's own keys.
    sample_size: usize,
    limits: (u64, u64),
}

impl SealSession {
    /// Builds the flows from the captured 1-RTT keys; `None` (rustls's keys stay) when the
    /// capture or the parameters are not what quicseal can take.
    fn offload(&self, keys: &Keys, captured: &[crate::Captured]) -> Option<Offload> {
        let first = OneRttKeys::from_captures(captured).ok()?;
        let mut peer = Vec::new();
        self.inner.transport_parameters().ok()??.write(&mut peer);
        let peer = Parameters::parse(&peer);
        // Sealing: headers carry the peer's connection IDs, and quinn greases the fixed bit
        // when the peer said it may. Opening: ours, and our word on greasing.
        let tx = TxFlow::from_keys(
            &first.local,
            FlowConfig {
                grease_quic_bit: peer.grease_quic_bit,
                ..FlowConfig::new(peer.cid_len?)
            },
        )
        .ok()?;
        let rx = RxFlow::from_keys(
            &first.remote,
            FlowConfig {
                grease_quic_bit: self.ours.grease_quic_bit,
                ..FlowConfig::new(self.ours.cid_len?)
            },
        )
        .ok()?;
        Some(Offload {
            flow: self.config.registry.insert(self.ours.cid_len?, tx, rx),
            first,
            generation: 0,
            sample_size: keys.header.local.sample_size(),
            limits: (
                self.config
                    .confidentiality_limit
                    .unwrap_or(keys.packet.local.confidentiality_limit()),
                keys.packet.local.integrity_limit(),
            ),
        })
    }

    fn passthrough(&self, offload: &Offload) -> KeyPair<Box<dyn PacketKey>> {
        let key = || -> Box<dyn PacketKey> {
            Box::new(PassthroughKey {
                stamp: self
                    .config
                    .registry
                    .stamp(&offload.flow, offload.generation),
                flow: Arc::clone(&offload.flow),
                generation: offload.generation,
                limits: offload.limits,
            })
        };
        KeyPair {
            local: key(),
            remote: key(),
        }
    }
}

impl crypto::Session for SealSession {
    fn initial_keys(&self, dst_cid: &ConnectionId, side: quinn::Side) -> Keys {
        self.inner.initial_keys(dst_cid, side)
    }

    fn handshake_data(&self) -> Option<Box<dyn Any>> {
        self.inner.handshake_data()
    }

    fn peer_identity(&self) -> Option<Box<dyn Any>> {
        self.inner.peer_identity()
    }

    fn early_crypto(&self) -> Option<(Box<dyn HeaderKey>, Box<dyn PacketKey>)> {
        self.inner.early_crypto()
    }

    fn early_data_accepted(&self) -> Option<bool> {
        self.inner.early_data_accepted()
    }

    fn is_handshaking(&self) -> bool {
        self.inner.is_handshaking()
    }

    fn read_handshake(&mut self, buf: &[u8]) -> Result<bool, TransportError> {
        self.inner.read_handshake(buf)
    }

    fn transport_parameters(&self) -> Result<Option<TransportParameters>, TransportError> {
        self.inner.transport_parameters()
    }

    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        let (keys, captured) = capture(|| self.inner.write_handshake(buf));
        let keys = keys?;
        self.key_changes += 1;
        if self.key_changes != 2 {
            return Some(keys);
        }
        let Some(offload) = self.offload(&keys, &captured) else {
            return Some(keys);
        };
        let header = || -> Box<dyn HeaderKey> {
            Box::new(PassthroughHeaderKey {
                sample_size: offload.sample_size,
            })
        };
        let keys = Keys {
            header: KeyPair {
                local: header(),
                remote: header(),
            },
            packet: self.passthrough(&offload),
        };
        self.offload = Some(offload);
        Some(keys)
    }

    fn next_1rtt_keys(&mut self) -> Option<KeyPair<Box<dyn PacketKey>>> {
        let (keys, captured) = capture(|| self.inner.next_1rtt_keys());
        let keys = keys?;
        let Some(offload) = self.offload.as_mut() else {
            return Some(keys);
        };
        offload.generation += 1;
        let Ok(next) = next_generation(&captured, &offload.first) else {
            // quicseal cannot take this generation: the flows will not open its packets,
            // and quinn's own keys protect them.
            self.offload = None;
            return Some(keys);
        };
        offload.flow.tx().hand_over(offload.generation, next.local);
        offload.flow.rx().hand_over(offload.generation, next.remote);
        let offload = self.offload.as_ref()?;
        Some(self.passthrough(offload))
    }

    fn is_valid_retry(&self, orig_dst_cid: &ConnectionId, header: &[u8], payload: &[u8]) -> bool {
        self.inner.is_valid_retry(orig_dst_cid, header, payload)
    }

    fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: &[u8],
    ) -> Result<(), ExportKeyingMaterialError> {
        self.inner.export_keying_material(output, label, context)
    }
}

impl Drop for SealSession {
    fn drop(&mut self) {
        if let Some(offload) = &self.offload {
            self.config.registry.remove(&offload.flow);
        }
    }
}

/// Header protection is the socket's: quinn sees headers in the clear both ways.
struct PassthroughHeaderKey {
    sample_size: usize,
}

impl HeaderKey for PassthroughHeaderKey {
    fn decrypt(&self, _pn_offset: usize, _packet: &mut [u8]) {}

    fn encrypt(&self, _pn_offset: usize, _packet: &mut [u8]) {}

    fn sample_size(&self) -> usize {
        self.sample_size
    }
}

/// A generation's packet key as quinn holds it: no key bytes, a stamp and a marker.
struct PassthroughKey {
    stamp: [u8; TAG_LEN],
    flow: Arc<Flow>,
    generation: u64,
    /// Confidentiality and integrity limits, rustls's own: quinn schedules its key updates by
    /// them.
    limits: (u64, u64),
}

impl PacketKey for PassthroughKey {
    /// Writes the stamp where the tag goes; the socket seals the packet.
    fn encrypt(&self, _packet: u64, buf: &mut [u8], _header_len: usize) {
        if let Some(at) = buf.len().checked_sub(TAG_LEN) {
            buf[at..].copy_from_slice(&self.stamp);
        }
    }

    /// Accepts the packet only if the socket opened it with this generation's keys.
    fn decrypt(
        &self,
        _packet: u64,
        _header: &[u8],
        payload: &mut BytesMut,
    ) -> Result<(), CryptoError> {
        let at = payload.len().checked_sub(TAG_LEN).ok_or(CryptoError)?;
        if !self.flow.is_marker(&payload[at..], self.generation) {
            return Err(CryptoError);
        }
        payload.truncate(at);
        Ok(())
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn confidentiality_limit(&self) -> u64 {
        self.limits.0
    }

    fn integrity_limit(&self) -> u64 {
        self.limits.1
    }
}

/// What quicseal needs of a side's transport parameters (RFC 9000 §18.2).
#[derive(Clone, Copy, Default)]
struct Parameters {
    /// The length of `initial_source_connection_id`: the side's connection IDs' length.
    cid_len: Option<usize>,
    /// `grease_quic_bit` (RFC 9287): the side accepts packets with the fixed bit cleared.
    grease_quic_bit: bool,
}

impl Parameters {
    const INITIAL_SOURCE_CONNECTION_ID: u64 = 0x0f;
    const GREASE_QUIC_BIT: u64 = 0x2ab2;

    /// Reads the encoded parameters; what it cannot read stays unknown.
    fn parse(mut bytes: &[u8]) -> Parameters {
        let mut parameters = Parameters::default();
        while let Some((id, rest)) = varint(bytes)
            && let Some((len, rest)) = varint(rest)
            && let Some(value) = rest.get(..len as usize)
        {
            match id {
                Self::INITIAL_SOURCE_CONNECTION_ID => parameters.cid_len = Some(value.len()),
                Self::GREASE_QUIC_BIT => parameters.grease_quic_bit = true,
                _ => {}
            }
            bytes = &rest[value.len()..];
        }
        parameters
    }
}

/// A QUIC variable-length integer at the front of `bytes`, and what follows it.
fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let first = *bytes.first()?;
    let len = 1 << (first >> 6);
    let mut value = u64::from(first & 0x3f);
    for &byte in bytes.get(1..len)? {
        value = value << 8 | u64::from(byte);
    }
    Some((value, &bytes[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_give_the_connection_id_length_and_greasing() {
        // max_idle_timeout 30000 (a 4-byte varint), initial_source_connection_id of 8 bytes,
        // grease_quic_bit (empty), then an unknown one.
        let mut bytes = vec![0x01, 0x04, 0x80, 0x00, 0x75, 0x30, 0x0f, 0x08];
        bytes.extend(b"abcdefgh");
        bytes.extend([0x80, 0x00, 0x2a, 0xb2, 0x00, 0x21, 0x01, 0x07]);
        let parameters = Parameters::parse(&bytes);
        assert_eq!(parameters.cid_len, Some(8));
        assert!(parameters.grease_quic_bit);
        // A zero-length ID is a length; cut short, what came before still counts.
        let parameters = Parameters::parse(&[0x0f, 0x00, 0x80, 0x00, 0x2a]);
        assert_eq!(parameters.cid_len, Some(0));
        assert!(!parameters.grease_quic_bit);
    }
}
