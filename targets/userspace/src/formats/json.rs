//! Reading the vectors' JSON format (vectors/README.md) with errors that say where: file,
//! packet index, field.

use std::fmt;
use std::path::Path;

use quicseal::{CipherSuite, FlowConfig};
use serde_json::Value;

/// A problem with the input, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// File, then the field's path in it (`job.json: packets[3].header`).
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl std::error::Error for InputError {}

/// Where in a file a value is: the file's name and the path to the value.
#[derive(Debug, Clone)]
pub struct Location {
    file: String,
    path: String,
}

impl Location {
    /// The top of `file`.
    pub fn file(file: &Path) -> Location {
        Location {
            file: file.display().to_string(),
            path: String::new(),
        }
    }

    /// The member `name` of the value here.
    pub fn field(&self, name: &str) -> Location {
        let path = if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.path)
        };
        Location {
            file: self.file.clone(),
            path,
        }
    }

    /// Element `index` of the array here.
    pub fn index(&self, index: usize) -> Location {
        Location {
            file: self.file.clone(),
            path: format!("{}[{index}]", self.path),
        }
    }

    /// An error here.
    pub fn error(&self, message: impl fmt::Display) -> InputError {
        InputError {
            location: if self.path.is_empty() {
                self.file.clone()
            } else {
                format!("{}: {}", self.file, self.path)
            },
            message: message.to_string(),
        }
    }
}

/// Reads and parses a JSON file; the top level must be an object.
pub fn load(path: &Path) -> Result<Value, InputError> {
    let at = Location::file(path);
    let text = std::fs::read_to_string(path).map_err(|e| at.error(format!("cannot read: {e}")))?;
    parse(&text, &at)
}

/// Parses a JSON document read from `at`; the top level must be an object.
pub fn parse(text: &str, at: &Location) -> Result<Value, InputError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| at.error(format!("invalid JSON: {e}")))?;
    if !value.is_object() {
        return Err(at.error("the top level is not a JSON object"));
    }
    Ok(value)
}

/// The member `name` of object `value`, which must be there.
pub fn required<'v>(value: &'v Value, at: &Location, name: &str) -> Result<&'v Value, InputError> {
    value
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| at.error(format!("missing field \"{name}\"")))
}

/// A string member.
pub fn string<'v>(value: &'v Value, at: &Location, name: &str) -> Result<&'v str, InputError> {
    required(value, at, name)?
        .as_str()
        .ok_or_else(|| at.field(name).error("not a string"))
}

/// A hex string member, decoded.
pub fn hex_bytes(value: &Value, at: &Location, name: &str) -> Result<Vec<u8>, InputError> {
    let text = string(value, at, name)?;
    hex::decode(text).map_err(|e| {
        at.field(name)
            .error(format!("invalid hex: {}", hex_problem(e)))
    })
}

fn hex_problem(error: hex::FromHexError) -> String {
    match error {
        hex::FromHexError::OddLength => "odd number of digits".to_string(),
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            format!("{c:?} at position {index} is not a hex digit")
        }
        other => other.to_string(),
    }
}

/// An optional non-negative integer member (absent or null: `None`).
pub fn optional_u64(value: &Value, at: &Location, name: &str) -> Result<Option<u64>, InputError> {
    match value.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| at.field(name).error("not a non-negative integer")),
    }
}

/// A non-negative integer member that must be there.
pub fn u64_field(value: &Value, at: &Location, name: &str) -> Result<u64, InputError> {
    optional_u64(value, at, name)?.ok_or_else(|| at.error(format!("missing field \"{name}\"")))
}

/// The elements of an optional array member (absent: none).
pub fn optional_list<'v>(
    value: &'v Value,
    at: &Location,
    name: &str,
) -> Result<&'v [Value], InputError> {
    match value.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(at.field(name).error("not an array")),
    }
}

/// The elements of an array member that must be there.
pub fn list<'v>(value: &'v Value, at: &Location, name: &str) -> Result<&'v [Value], InputError> {
    required(value, at, name)?;
    optional_list(value, at, name)
}

/// Looks a suite up by IANA name (`TLS_AES_128_GCM_SHA256`), short name (`aes128gcm`,
/// `aes256gcm`, `chacha20poly1305`, as in the vector file names) or code point (`0x1301`).
pub fn parse_suite(name: &str) -> Result<CipherSuite, String> {
    let lower = name.to_ascii_lowercase();
    let short = match lower.replace(['-', '_'], "").as_str() {
        "aes128gcm" | "aes128" => Some(CipherSuite::Aes128GcmSha256),
        "aes256gcm" | "aes256" => Some(CipherSuite::Aes256GcmSha384),
        "chacha20poly1305" | "chacha20" | "chacha" => Some(CipherSuite::ChaCha20Poly1305Sha256),
        _ => None,
    };
    let code = lower
        .strip_prefix("0x")
        .and_then(|hex| u16::from_str_radix(hex, 16).ok())
        .and_then(|code| CipherSuite::from_code(code).ok());
    short
        .or(code)
        .or_else(|| CipherSuite::from_name(&name.to_ascii_uppercase()).ok())
        .ok_or_else(|| {
            format!(
                "unknown cipher suite \"{name}\" (expected TLS_AES_128_GCM_SHA256, \
                 TLS_AES_256_GCM_SHA384 or TLS_CHACHA20_POLY1305_SHA256)"
            )
        })
}

/// The flow a file describes: suite, generation-0 secret, DCID length.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    /// The suite.
    pub suite: CipherSuite,
    /// The generation-0 traffic secret.
    pub secret: Vec<u8>,
    /// The flow's configuration (DCID length).
    pub config: FlowConfig,
}

impl FlowSpec {
    /// Reads `suite`, `secret` and `dcid_len` from the top of a file.
    pub fn read(doc: &Value, at: &Location) -> Result<FlowSpec, InputError> {
        let suite_name = string(doc, at, "suite")?;
        let suite = parse_suite(suite_name).map_err(|e| at.field("suite").error(e))?;
        let secret = hex_bytes(doc, at, "secret")?;
        if secret.len() != suite.secret_len() {
            return Err(at.field("secret").error(format!(
                "{}-byte secret, but {} takes {}-byte secrets",
                secret.len(),
                suite.name(),
                suite.secret_len()
            )));
        }
        let dcid_len = u64_field(doc, at, "dcid_len")?;
        let dcid_len = usize::try_from(dcid_len)
            .ok()
            .filter(|len| *len <= quicseal::wire::MAX_CID_LEN)
            .ok_or_else(|| {
                at.field("dcid_len")
                    .error(format!("{dcid_len} is more than 20"))
            })?;
        Ok(FlowSpec {
            suite,
            secret,
            config: FlowConfig::new(dcid_len),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn locations_name_file_index_and_field() {
        let at = Location::file(Path::new("job.json"));
        assert_eq!(at.error("x").to_string(), "job.json: x");
        let err = at.field("packets").index(3).field("header").error("bad");
        assert_eq!(err.to_string(), "job.json: packets[3].header: bad");
    }

    #[test]
    fn fields_report_what_is_wrong() {
        let at = Location::file(Path::new("f"));
        let doc = json!({"a": "0g", "b": "abc", "n": -1, "s": 5});
        assert_eq!(
            hex_bytes(&doc, &at, "a").unwrap_err().to_string(),
            "f: a: invalid hex: 'g' at position 1 is not a hex digit"
        );
        assert_eq!(
            hex_bytes(&doc, &at, "b").unwrap_err().message,
            "invalid hex: odd number of digits"
        );
        assert_eq!(
            hex_bytes(&doc, &at, "z").unwrap_err().message,
            "missing field \"z\""
        );
        assert_eq!(
            optional_u64(&doc, &at, "n").unwrap_err().to_string(),
            "f: n: not a non-negative integer"
        );
        assert_eq!(string(&doc, &at, "s").unwrap_err().message, "not a string");
    }

    #[test]
    fn suites_by_any_name() {
        for suite in CipherSuite::ALL {
            assert_eq!(parse_suite(suite.name()), Ok(suite));
            assert_eq!(parse_suite(&format!("{:#06x}", suite.code())), Ok(suite));
        }
        assert_eq!(
            parse_suite("chacha20poly1305"),
            Ok(CipherSuite::ChaCha20Poly1305Sha256)
        );
        assert_eq!(parse_suite("AES-256-GCM"), Ok(CipherSuite::Aes256GcmSha384));
        assert!(
            parse_suite("TLS_FOO")
                .unwrap_err()
                .contains("unknown cipher suite \"TLS_FOO\"")
        );
    }

    #[test]
    fn flow_spec_checks_the_secret_length() {
        let at = Location::file(Path::new("f"));
        let doc = json!({"suite": "TLS_AES_128_GCM_SHA256", "secret": "00", "dcid_len": 8});
        assert_eq!(
            FlowSpec::read(&doc, &at).unwrap_err().to_string(),
            "f: secret: 1-byte secret, but TLS_AES_128_GCM_SHA256 takes 32-byte secrets"
        );
        let doc = json!({"suite": "aes128gcm", "secret": "00".repeat(32), "dcid_len": 21});
        assert_eq!(
            FlowSpec::read(&doc, &at).unwrap_err().to_string(),
            "f: dcid_len: 21 is more than 20"
        );
    }
}
