//! The harness's command line: every flag is checked, so a typo stops the
//! run with a message instead of starting the full half-hour run.

/// What to run.
#[derive(Debug, Default, PartialEq)]
pub struct Args {
    /// `--quick`: N of 10k only, fewer latency samples, a smaller memory run.
    pub quick: bool,
    /// Not `--without-apalis`: run the peer's side too.
    pub with_apalis: bool,
    /// `--only WORKLOAD`.
    pub only: Option<&'static str>,
    /// `--backend NAME`.
    pub backend: Option<&'static str>,
    /// `--n N`.
    pub n: Option<u64>,
    /// `--memory-of SIDE N`: measure one side's memory and print it (the
    /// run starts itself as a child process with this).
    pub memory_of: Option<(&'static str, u64)>,
}

/// What the command line asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Run the benchmarks.
    Run(Args),
    /// `--help`: print [`USAGE`].
    Help,
}

/// The workloads `--only` accepts.
pub const WORKLOADS: [&str; 5] = ["burn-down", "burn-down-3step", "bulk-submit", "latency", "memory"];

/// The backends `--backend` accepts.
pub const BACKENDS: [&str; 5] = ["memory", "sqlite", "sqlite-sync-off", "postgres", "rocksdb"];

/// The sides `--memory-of` accepts.
const SIDES: [&str; 2] = ["runekernel", "apalis"];

/// The help text.
pub const USAGE: &str = "\
usage: runekernel-bench [--quick] [--only WORKLOAD] [--backend NAME] [--n N] [--without-apalis]
       runekernel-bench --memory-of runekernel|apalis N

  --quick           N of 10k only (the full run: 10k, 100k and 1M; 10k and 100k for Postgres)
  --only WORKLOAD   burn-down, burn-down-3step, bulk-submit, latency or memory
  --backend NAME    memory, sqlite, sqlite-sync-off, postgres or rocksdb (built with --features rocksdb)
  --n N             this N only
  --without-apalis  RuneKernel's rows only
  --memory-of       print one side's resident bytes per pending job (the run uses it)

Postgres rows need DATABASE_URL.";

/// Parses the arguments after the program's name.
///
/// # Errors
/// A message naming the argument that is unknown, lacks its value or has a
/// value that is not one of those allowed.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut parsed = Args {
        with_apalis: true,
        ..Args::default()
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |of: &str| args.next().ok_or_else(|| format!("{of} needs a value"));
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--quick" => parsed.quick = true,
            "--without-apalis" => parsed.with_apalis = false,
            "--only" => parsed.only = Some(one_of("--only", &value("--only")?, &WORKLOADS)?),
            "--backend" => parsed.backend = Some(one_of("--backend", &value("--backend")?, &BACKENDS)?),
            "--n" => parsed.n = Some(count("--n", &value("--n")?)?),
            "--memory-of" => {
                let side = one_of("--memory-of", &value("--memory-of")?, &SIDES)?;
                let n = count("--memory-of", &value("--memory-of SIDE")?)?;
                parsed.memory_of = Some((side, n));
            }
            other => return Err(format!("unknown argument `{other}`; --help lists them")),
        }
    }
    Ok(Command::Run(parsed))
}

fn one_of(flag: &str, value: &str, allowed: &[&'static str]) -> Result<&'static str, String> {
    allowed
        .iter()
        .find(|a| **a == value)
        .copied()
        .ok_or_else(|| format!("{flag} `{value}` is not one of {}", allowed.join(", ")))
}

fn count(flag: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} takes a positive number of jobs, not `{value}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn no_arguments_is_the_full_run_with_apalis() {
        assert_eq!(
            parse_str(""),
            Ok(Command::Run(Args {
                with_apalis: true,
                ..Args::default()
            }))
        );
    }

    #[test]
    fn every_flag_is_read() {
        let Ok(Command::Run(args)) = parse_str("--quick --only burn-down --backend postgres --n 500 --without-apalis")
        else {
            panic!("not parsed");
        };
        assert!(args.quick && !args.with_apalis);
        assert_eq!(
            (args.only, args.backend, args.n),
            (Some("burn-down"), Some("postgres"), Some(500))
        );
        assert_eq!(
            parse_str("--memory-of apalis 1000"),
            Ok(Command::Run(Args {
                with_apalis: true,
                memory_of: Some(("apalis", 1000)),
                ..Args::default()
            }))
        );
        assert_eq!(parse_str("--quick --help"), Ok(Command::Help));
    }

    #[test]
    fn a_wrong_argument_is_named() {
        for (line, names) in [
            ("--quik", "`--quik`"),
            ("--only burndown", "`burndown`"),
            ("--backend mysql", "`mysql`"),
            ("--n ten", "`ten`"),
            ("--n 0", "`0`"),
            ("--n", "--n needs a value"),
            ("--memory-of runekernel", "--memory-of SIDE needs a value"),
        ] {
            let error = parse_str(line).expect_err(line);
            assert!(error.contains(names), "{line}: {error}");
        }
    }
}
