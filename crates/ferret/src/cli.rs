//! Command-line flags, in two steps: [`RawArgs`] is what clap parsed, and
//! [`Settings`] is what ferret will do, validated and resolved.

use std::path::PathBuf;

use clap::Parser;

/// Flags as typed. Names and meanings follow bpftrace's.
#[derive(Debug, Parser)]
#[command(
    name = "ferret",
    version,
    about = "Trace Linux with bpftrace's language, compiled straight to eBPF",
    disable_version_flag = true,
    override_usage = "ferret [OPTIONS] FILENAME [ARGS]...\n       ferret [OPTIONS] -e 'program' [ARGS]...\n       ferret -l [PATTERN]"
)]
pub struct RawArgs {
    /// Program text.
    #[arg(short = 'e', value_name = "PROGRAM")]
    pub program: Option<String>,

    /// List probes matching PATTERN (all when no pattern is given).
    #[arg(short = 'l', long = "list", value_name = "PATTERN", num_args = 0..=1, default_missing_value = "*")]
    pub list: Option<String>,

    /// Write output to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Output format: text or json.
    #[arg(short = 'f', value_name = "FORMAT", default_value = "text")]
    pub format: String,

    /// Keep quiet: no "Attached N probes".
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Say what ferret does (mounts, programs loaded, attach times).
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Compile, load and attach, then stop without running the program.
    #[arg(long = "dry-run")]
    pub dry_run: bool,

    /// Print the generated eBPF of each probe and stop.
    #[arg(short = 'd', long = "dump")]
    pub dump: bool,

    /// Print the version.
    #[arg(short = 'V', long = "version")]
    pub version: bool,

    /// The script file (`-` for stdin) unless -e is given, then the
    /// program's positional parameters ($1, $2, ...).
    #[arg(
        value_name = "FILENAME | ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub rest: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Where the program comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Inline(String),
    File(PathBuf),
    Stdin,
}

/// What to do.
#[derive(Debug)]
pub enum Command {
    Version,
    List { pattern: String },
    Run(Box<RunSettings>),
}

#[derive(Debug)]
pub struct RunSettings {
    pub source: Source,
    pub positional: Vec<String>,
    pub output: Option<PathBuf>,
    pub format: OutputFormat,
    pub quiet: bool,
    pub verbose: bool,
    pub dry_run: bool,
    pub dump: bool,
}

/// Settings for the whole invocation.
#[derive(Debug)]
pub struct Settings {
    pub command: Command,
    pub verbose: bool,
}

impl RawArgs {
    /// Resolves the flags into settings, or a usage error message.
    pub fn resolve(self) -> Result<Settings, String> {
        let mut verbose = self.verbose;
        // `-lv` is `-l -v`, as with bpftrace's getopt; clap would read the
        // `v` as -l's pattern.
        let list = match self.list {
            Some(p) if p == "v" => {
                verbose = true;
                Some("*".to_string())
            }
            other => other,
        };
        if self.version {
            return Ok(Settings {
                command: Command::Version,
                verbose,
            });
        }
        if let Some(pattern) = list {
            // `ferret -l 'pattern'` may also arrive with the pattern
            // positional when written `-l -- pattern`.
            let pattern = match (pattern.as_str(), self.rest.first()) {
                ("*", Some(p)) => p.clone(),
                _ => pattern,
            };
            return Ok(Settings {
                command: Command::List { pattern },
                verbose,
            });
        }
        let format = match self.format.as_str() {
            "text" => OutputFormat::Text,
            "json" => OutputFormat::Json,
            other => {
                return Err(format!(
                    "invalid output format '{other}': expected text or json"
                ));
            }
        };
        let mut rest = self.rest.into_iter();
        let source = match self.program {
            Some(p) => Source::Inline(p),
            None => match rest.next() {
                Some(f) if f == "-" => Source::Stdin,
                // Flags after the first word are the program's, so an
                // unknown flag lands here; a file by that name still wins.
                Some(f) if f.starts_with('-') && !std::path::Path::new(&f).exists() => {
                    return Err(format!("unknown option '{f}'"));
                }
                Some(f) => Source::File(PathBuf::from(f)),
                None => {
                    return Err(
                        "no program given: pass a script file, '-' for stdin, or -e 'program'"
                            .into(),
                    );
                }
            },
        };
        Ok(Settings {
            command: Command::Run(Box::new(RunSettings {
                source,
                positional: rest.collect(),
                output: self.output,
                format,
                quiet: self.quiet,
                verbose,
                dry_run: self.dry_run,
                dump: self.dump,
            })),
            verbose,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: &[&str]) -> Result<Settings, String> {
        RawArgs::try_parse_from(std::iter::once("ferret").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?
            .resolve()
    }

    #[test]
    fn inline_program_takes_every_word_as_a_parameter() {
        let s = resolve(&["-e", "begin { }", "a", "-5"]).unwrap();
        let Command::Run(run) = s.command else {
            panic!()
        };
        assert_eq!(run.source, Source::Inline("begin { }".into()));
        assert_eq!(run.positional, ["a", "-5"]);
    }

    #[test]
    fn file_then_parameters() {
        let s = resolve(&["script.bt", "1", "2"]).unwrap();
        let Command::Run(run) = s.command else {
            panic!()
        };
        assert_eq!(run.source, Source::File("script.bt".into()));
        assert_eq!(run.positional, ["1", "2"]);
    }

    #[test]
    fn dash_is_stdin() {
        let s = resolve(&["-"]).unwrap();
        let Command::Run(run) = s.command else {
            panic!()
        };
        assert_eq!(run.source, Source::Stdin);
    }

    #[test]
    fn list_with_and_without_pattern() {
        let s = resolve(&["-l"]).unwrap();
        assert!(matches!(s.command, Command::List { pattern } if pattern == "*"));
        let s = resolve(&["-l", "tracepoint:sched:*"]).unwrap();
        assert!(matches!(s.command, Command::List { pattern } if pattern == "tracepoint:sched:*"));
    }

    #[test]
    fn lv_is_list_and_verbose() {
        let s = resolve(&["-lv", "tracepoint:sched:*"]).unwrap();
        assert!(s.verbose);
        assert!(matches!(s.command, Command::List { pattern } if pattern == "tracepoint:sched:*"));
        let s = resolve(&["-lv"]).unwrap();
        assert!(s.verbose);
        assert!(matches!(s.command, Command::List { pattern } if pattern == "*"));
    }

    #[test]
    fn unknown_flag_is_not_a_file_name() {
        let Err(e) = resolve(&["--bogus"]) else {
            panic!()
        };
        assert_eq!(e, "unknown option '--bogus'");
    }

    #[test]
    fn missing_program_is_a_usage_error() {
        assert!(resolve(&[]).is_err());
        assert!(resolve(&["-f", "xml", "-e", "begin{}"]).is_err());
    }
}
