//! `panoptes walk`: walk a subtree of one agent and print it like `snmpbulkwalk` (or
//! `snmpwalk -v1`), names and values from the MIBs (`-On` numeric), so people can compare.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;

use super::{
    AuthProtocol, Community, Oid, PrivProtocol, Secret, SnmpClient, SnmpTarget, SnmpValue,
    SnmpVersion, UsmUser,
};
use crate::mib::{Mibs, OutputOptions, Renderer};

#[derive(clap::Args, Debug, Clone)]
pub struct WalkArgs {
    /// SNMP version: 1, 2c or 3.
    #[arg(
        short = 'v',
        long = "snmp-version",
        default_value = "2c",
        value_name = "1|2c|3"
    )]
    pub version: SnmpVersion,
    /// Community (v1, v2c).
    #[arg(
        short = 'c',
        long,
        default_value = "public",
        env = "PANOPTES_WALK_COMMUNITY",
        hide_env_values = true
    )]
    pub community: String,
    /// v3 user name.
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// v3 security level (noAuthNoPriv, authNoPriv, authPriv); by default
    /// implied by the protocols given.
    #[arg(short = 'l', long, value_name = "LEVEL")]
    pub level: Option<String>,
    /// v3 authentication protocol: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512.
    #[arg(short = 'a', long, value_name = "PROTOCOL")]
    pub auth_protocol: Option<AuthProtocol>,
    /// v3 authentication passphrase.
    #[arg(
        short = 'A',
        long,
        value_name = "PASSPHRASE",
        env = "PANOPTES_WALK_AUTH",
        hide_env_values = true
    )]
    pub auth_passphrase: Option<String>,
    /// v3 privacy protocol: DES, AES, AES-192, AES-256.
    #[arg(short = 'x', long, value_name = "PROTOCOL")]
    pub priv_protocol: Option<PrivProtocol>,
    /// v3 privacy passphrase.
    #[arg(
        short = 'X',
        long,
        value_name = "PASSPHRASE",
        env = "PANOPTES_WALK_PRIV",
        hide_env_values = true
    )]
    pub priv_passphrase: Option<String>,
    /// Seconds to wait for each answer.
    #[arg(short = 't', long, default_value_t = 5.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Retries after a timeout.
    #[arg(short = 'r', long, default_value_t = 1)]
    pub retries: u32,
    /// Repetitions per GETBULK.
    #[arg(long = "max-repetitions", default_value_t = 25, value_name = "N")]
    pub max_repetitions: u32,
    /// Output like net-snmp's `-O`: `n` numeric OIDs, `e` enumerations as numbers (`-One`
    /// both).
    #[arg(short = 'O', value_name = "n|e")]
    pub output: Option<String>,
    /// MIB directories separated by `:`, searched before `[mibs] dirs` and the built-in
    /// modules.
    #[arg(short = 'M', value_name = "DIRS")]
    pub mib_dirs: Option<String>,
    /// `-m ""`: print as with no MIBs (numeric OIDs, raw values), like net-snmp with
    /// none loaded; `ALL` (the default): every loaded module.
    #[arg(short = 'm', value_name = "ALL|\"\"", default_value = "ALL")]
    pub modules: String,
    /// The agent: HOST, HOST:PORT, [IPV6]:PORT, optionally prefixed `udp:`.
    pub agent: String,
    /// The subtree to walk (default: the whole MIB): a numeric OID or a MIB name
    /// (`IF-MIB::ifXTable`, `ifHCInOctets`).
    #[arg(default_value = ".1")]
    pub oid: String,
}

/// Splits `udp:host:port`, `host:port`, `[v6]:port` or `host`.
fn host_and_port(agent: &str) -> anyhow::Result<(String, u16)> {
    let agent = agent.strip_prefix("udp:").unwrap_or(agent);
    if let Some(rest) = agent.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .with_context(|| format!("agent {agent:?}: unclosed [ in an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => port
                .parse()
                .with_context(|| format!("agent {agent:?}: bad port"))?,
            None => 161,
        };
        return Ok((host.to_string(), port));
    }
    match agent.rsplit_once(':') {
        // More than one colon without brackets: a bare IPv6 address.
        Some((host, _)) if host.contains(':') => Ok((agent.to_string(), 161)),
        Some((host, port)) => Ok((
            host.to_string(),
            port.parse()
                .with_context(|| format!("agent {agent:?}: port {port:?} is not a number"))?,
        )),
        None => Ok((agent.to_string(), 161)),
    }
}

/// The target the arguments describe.
pub fn target(args: &WalkArgs) -> anyhow::Result<SnmpTarget> {
    let (host, port) = host_and_port(&args.agent)?;
    let mut target = SnmpTarget::new(host, Community::new(args.community.clone()));
    target.port = port;
    target.version = args.version;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        anyhow::bail!("-t must be a positive number of seconds");
    }
    target.timeout = Duration::from_secs_f64(args.timeout);
    target.retries = args.retries;
    target.max_repetitions = args.max_repetitions.max(1);
    if args.version == SnmpVersion::V3 {
        let name = args.user.clone().context("SNMPv3 needs a user: -u USER")?;
        let mut user = UsmUser::no_auth(name);
        if let Some(protocol) = args.auth_protocol {
            let pass = args
                .auth_passphrase
                .clone()
                .context("-a needs its passphrase: -A PASSPHRASE")?;
            user = user.with_auth(protocol, Secret::new(pass));
        }
        if let Some(protocol) = args.priv_protocol {
            let pass = args
                .priv_passphrase
                .clone()
                .context("-x needs its passphrase: -X PASSPHRASE")?;
            if user.auth.is_none() {
                anyhow::bail!("privacy (-x) needs authentication (-a) too");
            }
            user = user.with_privacy(protocol, Secret::new(pass));
        }
        if let Some(level) = &args.level {
            let implied = user.level().to_string();
            if !level.eq_ignore_ascii_case(&implied) {
                anyhow::bail!(
                    "-l {level} does not match the protocols given, which make {implied}"
                );
            }
        }
        user.check()?;
        target.usm = Some(user);
    }
    Ok(target)
}

/// How lines print: `-O` flags, and the MIBs unless `-m ""`.
fn renderer<'a>(args: &WalkArgs, mibs: &'a Mibs) -> anyhow::Result<Renderer<'a>> {
    let options =
        OutputOptions::parse(args.output.as_deref().unwrap_or("")).map_err(anyhow::Error::msg)?;
    let mibs = match args.modules.as_str() {
        "" => None,
        "ALL" => Some(mibs),
        other => anyhow::bail!(
            "-m {other:?}: only -m ALL (every loaded module, the default) or -m \"\" (none) are supported; add directories with -M"
        ),
    };
    Ok(Renderer::new(mibs, options))
}

pub async fn run(args: WalkArgs, mibs: &Mibs, out: &mut impl Write) -> anyhow::Result<()> {
    let target = target(&args)?;
    let render = renderer(&args, mibs)?;
    let root: Oid = mibs.resolve(&args.oid)?;
    let mut client = SnmpClient::connect(&target).await?;
    let walked = client.walk(&root).await?;
    if walked.rows.is_empty() && walked.end_of_mib.is_none() {
        // Like net-snmp: nothing under the OID, so show what the OID itself is.
        match client.get(std::slice::from_ref(&root)).await {
            Ok(varbinds) => {
                for varbind in &varbinds {
                    writeln!(out, "{}", render.line(varbind))?;
                }
            }
            Err(super::SnmpError::ErrorStatus { status: 2, .. })
                if target.version == SnmpVersion::V1 => {}
            Err(e) => return Err(e.into()),
        }
        out.flush()?;
        return Ok(());
    }
    for varbind in &walked.rows {
        writeln!(out, "{}", render.line(varbind))?;
    }
    match (&walked.end_of_mib, target.version) {
        (Some(_), SnmpVersion::V1) => writeln!(out, "End of MIB")?,
        (Some(name), _) => writeln!(
            out,
            "{}",
            render.line(&super::Varbind::new(name.clone(), SnmpValue::EndOfMibView))
        )?,
        (None, _) => {}
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        walk: WalkArgs,
    }

    #[test]
    fn arguments_like_net_snmp() {
        let cli = Cli::try_parse_from([
            "walk",
            "-v",
            "3",
            "-u",
            "ops",
            "-l",
            "authPriv",
            "-a",
            "SHA",
            "-A",
            "authpass1",
            "-x",
            "AES",
            "-X",
            "privpass1",
            "udp:10.0.0.1:1161",
            ".1.3.6.1.2.1.2",
        ])
        .unwrap();
        let t = target(&cli.walk).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.version),
            ("10.0.0.1", 1161, SnmpVersion::V3)
        );
        let user = t.usm.unwrap();
        assert_eq!(user.auth.as_ref().unwrap().0, AuthProtocol::Sha1);
        assert_eq!(user.privacy.as_ref().unwrap().0, PrivProtocol::Aes128);
        let cli = Cli::try_parse_from(["walk", "-v", "1", "-c", "private", "[::1]:99"]).unwrap();
        let t = target(&cli.walk).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 99));
        assert_eq!(t.community.expose(), "private");
        assert_eq!(cli.walk.oid, ".1");
        let bad = Cli::try_parse_from(["walk", "-v", "3", "-a", "SHA", "h"]).unwrap();
        assert!(target(&bad.walk)
            .unwrap_err()
            .to_string()
            .contains("-u USER"));
        let bad = Cli::try_parse_from(["walk", "-v", "3", "-u", "x", "-a", "SHA", "h"]).unwrap();
        assert!(target(&bad.walk).unwrap_err().to_string().contains("-A"));
        let err = Cli::try_parse_from(["walk", "-v", "4", "h"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        let err = err.to_string();
        assert!(
            err.contains("unknown SNMP version \"4\" (expected 1, 2c or 3)"),
            "{err}"
        );
        assert_eq!(host_and_port("h").unwrap(), ("h".to_string(), 161));
        assert_eq!(
            host_and_port("h:x").unwrap_err().to_string(),
            "agent \"h:x\": port \"x\" is not a number"
        );
    }
}
