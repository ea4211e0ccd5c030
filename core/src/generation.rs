//! Key generations (RFC 9001 §6): the keys in use, the next ones kept ready, and how a key
//! update moves from one to the other.

use zeroize::Zeroizing;

use crate::backend::{Backend, HeaderKey, PacketKey, prefetch};
use crate::keys::IV_LEN;
use crate::{CipherSuite, Error, KeyMaterial, TrafficSecret};

/// One generation's AEAD key and IV, and the secret the next generation derives from (absent
/// for flows built from explicit keys).
pub(crate) struct Generation<B: Backend> {
    pub(crate) number: u64,
    pub(crate) key: B::PacketKey,
    pub(crate) iv: Zeroizing<[u8; IV_LEN]>,
    secret: Option<TrafficSecret>,
}

impl<B: Backend> Generation<B> {
    fn new(
        number: u64,
        material: &KeyMaterial,
        secret: Option<TrafficSecret>,
    ) -> Result<Self, Error> {
        Ok(Generation {
            number,
            key: B::packet_key(material.suite(), material.key())?,
            iv: Zeroizing::new(*material.iv()),
            secret,
        })
    }

    /// The key phase bit this generation's packets carry.
    pub(crate) fn key_phase(&self) -> bool {
        self.number & 1 == 1
    }

    /// Derives the following generation, if this one has a secret to derive it from and is
    /// not the last one a `u64` can number.
    fn derive_next(&self) -> Option<Result<Generation<B>, Error>> {
        let number = self.number.checked_add(1)?;
        let next = self.secret.as_ref()?.next();
        Some(Generation::new(number, &next.key_material(), Some(next)))
    }
}

/// A direction's keys: header protection, the current generation and the next one.
pub(crate) struct KeySet<B: Backend> {
    pub(crate) suite: CipherSuite,
    pub(crate) header_key: B::HeaderKey,
    pub(crate) current: Generation<B>,
    pub(crate) next: Option<Generation<B>>,
}

impl<B: Backend> KeySet<B> {
    /// Prefetches what every packet reads: the header key and the current generation's
    /// key, IV and number.
    pub(crate) fn prefetch_current(&self) {
        self.header_key.prefetch();
        self.current.key.prefetch();
        prefetch(&self.current.iv);
        prefetch(&self.current.number);
    }

    /// Generation 0 from a traffic secret, with generation 1 derived and ready.
    pub(crate) fn from_secret(suite: CipherSuite, secret: &[u8]) -> Result<Self, Error> {
        let secret = TrafficSecret::new(suite, secret)?;
        let material = secret.key_material();
        let current = Generation::new(0, &material, Some(secret))?;
        let next = current.derive_next().transpose()?;
        Ok(KeySet {
            suite,
            header_key: B::header_key(suite, material.hp())?,
            current,
            next,
        })
    }

    /// Generation `number` from that generation's secret and the header-protection key (which
    /// came from generation 0's secret and never changes), with the next one derived and
    /// ready: for state that moves between owners mid-connection.
    pub(crate) fn resume(
        suite: CipherSuite,
        secret: &[u8],
        header_key: &[u8],
        number: u64,
    ) -> Result<Self, Error> {
        let secret = TrafficSecret::new(suite, secret)?;
        let current = Generation::new(number, &secret.key_material(), Some(secret))?;
        let next = current.derive_next().transpose()?;
        Ok(KeySet {
            suite,
            header_key: B::header_key(suite, header_key)?,
            current,
            next,
        })
    }

    /// Generation 0 from explicit keys; the caller installs each next generation.
    pub(crate) fn from_keys(material: &KeyMaterial) -> Result<Self, Error> {
        let suite = material.suite();
        Ok(KeySet {
            suite,
            header_key: B::header_key(suite, material.hp())?,
            current: Generation::new(0, material, None)?,
            next: None,
        })
    }

    /// Installs explicit keys for the generation after the current one. Their header
    /// protection key is ignored: it never changes (RFC 9001 §6).
    pub(crate) fn install_next(&mut self, material: &KeyMaterial) -> Result<(), Error> {
        if material.suite() != self.suite {
            return Err(Error::UnknownSuite);
        }
        let number = self
            .current
            .number
            .checked_add(1)
            .ok_or(Error::InvalidConfig)?;
        self.next = Some(Generation::new(number, material, None)?);
        Ok(())
    }

    /// Makes the next generation current and leaves the one after it for
    /// [`prepare_next`](Self::prepare_next). Returns the retired generation, its secret wiped
    /// (dropping it wipes the rest).
    pub(crate) fn promote_deferring_next(&mut self) -> Result<Generation<B>, Error> {
        let next = self.next.take().ok_or(Error::KeyUnavailable)?;
        let mut retired = core::mem::replace(&mut self.current, next);
        retired.secret = None;
        Ok(retired)
    }

    /// Derives the next generation if it is missing and the current one has a secret to derive
    /// it from (flows built from explicit keys are given theirs by the caller).
    pub(crate) fn prepare_next(&mut self) -> Result<(), Error> {
        if self.next.is_none() {
            self.next = self.current.derive_next().transpose()?;
        }
        Ok(())
    }

    /// Makes the next generation current and derives the one after it. Returns the retired
    /// generation, which the caller keeps or drops (dropping wipes it); it keeps only its key
    /// and IV, its secret is wiped now. Nothing changes if the derivation fails.
    pub(crate) fn promote(&mut self) -> Result<Generation<B>, Error> {
        let after = match &self.next {
            Some(next) => next.derive_next().transpose()?,
            None => return Err(Error::KeyUnavailable),
        };
        let next = core::mem::replace(&mut self.next, after).ok_or(Error::KeyUnavailable)?;
        let mut retired = core::mem::replace(&mut self.current, next);
        retired.secret = None;
        Ok(retired)
    }
}
