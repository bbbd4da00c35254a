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

    /// Print debug output for STAGE (codegen, dis or all; comma
    /// separated), then run.
    #[arg(
        short = 'd',
        long = "debug",
        visible_alias = "dump",
        value_name = "STAGE",
        num_args = 0..=1,
        default_missing_value = "all"
    )]
    pub debug: Option<String>,

    /// Follow process PID: its perf events only, other probes filtered to
    /// it; stop when it exits.
    #[arg(short = 'p', long = "pid", value_name = "PID")]
    pub pid: Option<String>,

    /// Run CMD (split at spaces) once the probes are attached; `cpid` is
    /// its pid; stop when it exits.
    #[arg(short = 'c', long = "cmd", value_name = "CMD")]
    pub cmd: Option<String>,

    /// Allow functions with effects outside the trace (system, signal).
    #[arg(long = "unsafe")]
    pub allow_unsafe: bool,

    /// Output buffering: line (the default), full or none.
    #[arg(short = 'B', value_name = "MODE")]
    pub buffering: Option<String>,

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

/// When output reaches its file or terminal (`-B`), as with stdio's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Buffering {
    /// Every complete line at once (bpftrace's default, also for `-o`).
    #[default]
    Line,
    /// When the buffer fills, and at exit.
    Full,
    /// Every write at once.
    None,
}

/// What `-d` shows before the trace runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DebugStages {
    /// The generated eBPF of each probe (bpftrace's `codegen` shows LLVM
    /// IR and `dis` the bytecode; ferret's code generator emits eBPF
    /// directly, so both show it).
    pub codegen: bool,
}

impl DebugStages {
    fn parse(arg: &str) -> Result<Self, String> {
        let mut stages = Self::default();
        for stage in arg.split(',').filter(|s| !s.is_empty()) {
            match stage {
                "all" | "codegen" | "dis" => stages.codegen = true,
                other => {
                    let why = match other {
                        "ast" | "types" | "codegen-opt" | "libbpf" | "verifier" | "parse" => {
                            " (a bpftrace stage ferret does not have)"
                        }
                        _ => "",
                    };
                    return Err(format!(
                        "invalid stage for -d: '{other}'{why}: expected all, codegen or dis"
                    ));
                }
            }
        }
        Ok(stages)
    }
}

/// The process a trace follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessTarget {
    /// `-p PID`
    Pid(u32),
    /// `-c CMD`
    Command(String),
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
    /// `--name=value` and `--name` words after the program (without the
    /// dashes), for `getopt`.
    pub named: Vec<String>,
    pub output: Option<PathBuf>,
    pub format: OutputFormat,
    pub quiet: bool,
    pub verbose: bool,
    pub dry_run: bool,
    pub debug: DebugStages,
    pub process: Option<ProcessTarget>,
    pub allow_unsafe: bool,
    pub buffering: Buffering,
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
        let buffering = match self.buffering.as_deref() {
            None | Some("line") => Buffering::Line,
            Some("full") => Buffering::Full,
            Some("none") => Buffering::None,
            Some(other) => {
                return Err(format!(
                    "invalid buffering mode '{other}' for -B: expected line, full or none"
                ));
            }
        };
        let debug = match &self.debug {
            Some(arg) => DebugStages::parse(arg)?,
            None => DebugStages::default(),
        };
        let process = match (self.pid, self.cmd) {
            (Some(_), Some(_)) => return Err("cannot use both -c and -p".into()),
            (Some(pid), None) => {
                Some(ProcessTarget::Pid(pid.trim().parse().map_err(|_| {
                    format!("invalid pid '{pid}' for -p: expected a process id")
                })?))
            }
            (None, Some(cmd)) => Some(ProcessTarget::Command(cmd)),
            (None, None) => None,
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
        // As bpftrace: after the program, `--name[=value]` words are named
        // parameters and the others positional ones.
        let (named, positional): (Vec<String>, Vec<String>) = rest
            .filter(|w| w != "--")
            .partition(|w| w.starts_with("--"));
        Ok(Settings {
            command: Command::Run(Box::new(RunSettings {
                source,
                positional,
                named: named.into_iter().map(|w| w[2..].to_owned()).collect(),
                output: self.output,
                format,
                quiet: self.quiet,
                verbose,
                dry_run: self.dry_run,
                debug,
                process,
                allow_unsafe: self.allow_unsafe,
                buffering,
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
    fn named_parameters_after_double_dash() {
        let s = resolve(&["-e", "begin { }", "p1", "--", "--aa=20", "--bb", "-3"]).unwrap();
        let Command::Run(run) = s.command else {
            panic!()
        };
        assert_eq!(run.positional, ["p1", "-3"]);
        assert_eq!(run.named, ["aa=20", "bb"]);
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

    fn run_settings(args: &[&str]) -> RunSettings {
        match resolve(args).map(|s| s.command) {
            Ok(Command::Run(run)) => *run,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn process_targets() {
        let run = run_settings(&["-p", "42", "-e", "begin { }"]);
        assert_eq!(run.process, Some(ProcessTarget::Pid(42)));
        let run = run_settings(&["--pid", "42", "-e", "begin { }"]);
        assert_eq!(run.process, Some(ProcessTarget::Pid(42)));
        let run = run_settings(&["-c", "sleep 1", "-e", "begin { }"]);
        assert_eq!(run.process, Some(ProcessTarget::Command("sleep 1".into())));
        let run = run_settings(&["--cmd", "ls", "-e", "begin { }", "--unsafe"]);
        assert_eq!(run.process, Some(ProcessTarget::Command("ls".into())));
        assert_eq!(
            resolve(&["-p", "1", "-c", "ls", "-e", "begin { }"]).err(),
            Some("cannot use both -c and -p".into())
        );
        assert_eq!(
            resolve(&["-p", "x1", "-e", "begin { }"]).err(),
            Some("invalid pid 'x1' for -p: expected a process id".into())
        );
    }

    #[test]
    fn buffering_modes() {
        assert_eq!(
            run_settings(&["-e", "begin { }"]).buffering,
            Buffering::Line
        );
        for (arg, mode) in [
            ("line", Buffering::Line),
            ("full", Buffering::Full),
            ("none", Buffering::None),
        ] {
            assert_eq!(
                run_settings(&["-B", arg, "-e", "begin { }"]).buffering,
                mode
            );
        }
        assert!(resolve(&["-B", "block", "-e", "begin { }"]).is_err());
    }

    #[test]
    fn debug_stages() {
        let all = DebugStages { codegen: true };
        assert_eq!(run_settings(&["-d", "-e", "begin { }"]).debug, all);
        assert_eq!(run_settings(&["-d", "all", "-e", "begin { }"]).debug, all);
        assert_eq!(run_settings(&["--dump", "-e", "begin { }"]).debug, all);
        assert_eq!(
            run_settings(&["--debug=codegen,dis", "-e", "begin { }"]).debug,
            all
        );
        assert_eq!(
            run_settings(&["-d", "codegen", "-e", "begin { }"]).debug,
            all
        );
        assert_eq!(
            run_settings(&["-e", "begin { }"]).debug,
            DebugStages::default()
        );
        let Err(e) = resolve(&["-d", "libbpf", "-e", "begin { }"]) else {
            panic!()
        };
        assert!(
            e.contains("'libbpf' (a bpftrace stage ferret does not have)"),
            "{e}"
        );
    }

    #[test]
    fn missing_program_is_a_usage_error() {
        assert!(resolve(&[]).is_err());
        assert!(resolve(&["-f", "xml", "-e", "begin{}"]).is_err());
    }
}
