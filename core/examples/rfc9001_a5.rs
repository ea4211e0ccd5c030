//! Seals and opens the short-header packet of RFC 9001 Appendix A.5 (ChaCha20-Poly1305),
//! printing each step. Run with `cargo xtask demo`.

use quicseal::{CipherSuite, Error, FlowConfig, RxFlow, TxFlow};

const SECRET: &str = "9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b";
const PACKET_NUMBER: u64 = 654_360_564;
const HEADER: &str = "4200bff4";
const PAYLOAD: &str = "01";
const PROTECTED: &str = "4cfe4189655e5cd55c41f69080575d7999c25a5bfb";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let suite = CipherSuite::ChaCha20Poly1305Sha256;
    let secret = hex::decode(SECRET)?;
    let (header, payload) = (hex::decode(HEADER)?, hex::decode(PAYLOAD)?);
    println!(
        "RFC 9001 A.5: {} short-header packet, packet number {PACKET_NUMBER}",
        suite.name()
    );
    println!("  cleartext header  {HEADER}   payload {PAYLOAD}");

    let mut tx: TxFlow = TxFlow::from_secret(suite, &secret, FlowConfig::new(0))?;
    let mut protected = vec![0u8; header.len() + payload.len() + 16];
    let sealed = tx.seal_numbered(PACKET_NUMBER, &[&header, &payload], &mut [&mut protected])?;
    println!(
        "  sealed            {}  ({} bytes)",
        hex::encode(&protected),
        sealed.len
    );
    let matches = hex::encode(&protected) == PROTECTED;
    println!("  matches the RFC   {}", if matches { "yes" } else { "NO" });

    let mut rx: RxFlow = RxFlow::from_secret(suite, &secret, FlowConfig::new(0))?;
    rx.set_largest_received(Some(PACKET_NUMBER - 1));
    let opened = rx.open_in_place(&mut protected)?;
    let packet = opened.packet.ok_or(Error::Malformed)?;
    println!(
        "  opened            header {} payload {}  packet number {}",
        hex::encode(&protected[..packet.header_len]),
        hex::encode(&protected[packet.header_len..opened.len]),
        packet.number
    );
    if !matches || packet.number != PACKET_NUMBER {
        return Err("the sealed packet differs from RFC 9001 A.5".into());
    }
    Ok(())
}
