//! CPU profiles of a whole process with pprof-rs: started at launch, written
//! at the end as a flamegraph (`.svg`), a pprof protobuf (`.pb`, readable by
//! `go tool pprof` and friends) and collapsed stacks (`.folded`, what
//! kv-dash draws). Servers and clients profile only through this module.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Samples per second: low enough to cost well under 1% of throughput.
pub const DEFAULT_HZ: i32 = 99;

/// The sampling rate: `KVLAB_PROFILE_HZ` when set to a number in 1..=10000
/// (for a closer look), else [`DEFAULT_HZ`].
pub fn hz_from_env() -> i32 {
    std::env::var("KVLAB_PROFILE_HZ")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|hz| (1..=10_000).contains(hz))
        .unwrap_or(DEFAULT_HZ)
}

#[derive(Debug, Error)]
pub enum ProfileError {
    #[error("cannot start the profiler: {0}")]
    Start(pprof::Error),
    #[error("cannot build the profile report: {0}")]
    Report(pprof::Error),
    // The cause is the source: `{:#}` prints it once.
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A running profiler; [`Profiler::finish`] writes the three files.
pub struct Profiler {
    guard: pprof::ProfilerGuard<'static>,
    prefix: PathBuf,
}

/// The files a finished profile was written to.
#[derive(Debug, Clone)]
pub struct ProfileFiles {
    pub svg: PathBuf,
    pub pb: PathBuf,
    pub folded: PathBuf,
    pub samples: u64,
}

impl Profiler {
    /// Starts sampling this process; files go to `PREFIX.{svg,pb,folded}`.
    pub fn start(prefix: &Path, hz: i32) -> Result<Self, ProfileError> {
        // Fail now, not after the whole run: the files must be creatable.
        let mut probe = prefix.as_os_str().to_owned();
        probe.push(".svg");
        let probe = PathBuf::from(probe);
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&probe)
            .map_err(|source| ProfileError::Write {
                path: probe.clone(),
                source,
            })?;
        // Unwinding through these libraries from a signal handler can deadlock.
        let guard = pprof::ProfilerGuardBuilder::default()
            .frequency(hz)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
            .map_err(ProfileError::Start)?;
        Ok(Self {
            guard,
            prefix: prefix.to_path_buf(),
        })
    }

    /// Stops sampling and writes the profile files. The addresses are
    /// symbolised in a child process (`crate::symbolize`), so the debug
    /// info it loads never counts against this process's memory; only if
    /// no child can be started is it done here.
    pub fn finish(self) -> Result<ProfileFiles, ProfileError> {
        let raw = crate::symbolize::RawProfile::of(&self.guard.report(), &self.prefix)
            .map_err(ProfileError::Report)?;
        // Stops sampling and frees the sample table.
        drop(self.guard);
        match crate::symbolize::in_child(&raw) {
            Ok(()) => Ok(ProfileFiles::at(&self.prefix, raw.samples())),
            Err(why) => {
                eprintln!("profile: symbolising here ({why})");
                // Here the addresses need no moving: they are this process's.
                write_files(&raw.resolve(&raw.mappings), &self.prefix, raw.samples())
            }
        }
    }
}

impl ProfileFiles {
    fn at(prefix: &Path, samples: u64) -> Self {
        let with_ext = |ext: &str| {
            let mut p = prefix.to_path_buf().into_os_string();
            p.push(ext);
            PathBuf::from(p)
        };
        ProfileFiles {
            svg: with_ext(".svg"),
            pb: with_ext(".pb"),
            folded: with_ext(".folded"),
            samples,
        }
    }
}

/// Writes `report` as `PREFIX.{folded,svg,pb}`.
pub fn write_files(
    report: &pprof::Report,
    prefix: &Path,
    samples: u64,
) -> Result<ProfileFiles, ProfileError> {
    let files = ProfileFiles::at(prefix, samples);
    let create = |path: &PathBuf| {
        File::create(path)
            .map(BufWriter::new)
            .map_err(|source| ProfileError::Write {
                path: path.clone(),
                source,
            })
    };
    let io_err = |path: &PathBuf| {
        let path = path.clone();
        move |source| ProfileError::Write { path, source }
    };

    let lines = crate::folded::report_lines(report);
    let mut folded = create(&files.folded)?;
    for line in &lines {
        writeln!(folded, "{line}").map_err(io_err(&files.folded))?;
    }
    folded.flush().map_err(io_err(&files.folded))?;

    let mut svg = create(&files.svg)?;
    if lines.is_empty() {
        // inferno refuses empty input; an idle process still gets a valid file.
        svg.write_all(
            br#"<svg xmlns="http://www.w3.org/2000/svg"><text y="20">no samples</text></svg>"#,
        )
        .map_err(io_err(&files.svg))?;
    } else {
        report.flamegraph(&mut svg).map_err(ProfileError::Report)?;
    }
    svg.flush().map_err(io_err(&files.svg))?;

    use pprof::protos::Message;
    let proto = report.pprof().map_err(ProfileError::Report)?;
    std::fs::write(&files.pb, proto.encode_to_vec()).map_err(io_err(&files.pb))?;
    Ok(files)
}

/// What a `.pb` profile holds, decoded: total samples and every function name.
#[derive(Debug, Clone)]
pub struct PbContents {
    pub samples: i64,
    pub functions: Vec<String>,
}

/// Decodes a pprof protobuf file (as written by [`Profiler::finish`] or any
/// pprof producer) into its sample count and function names.
pub fn read_pb(path: &Path) -> Result<PbContents, ProfileError> {
    use pprof::protos::Message;
    let bytes = std::fs::read(path).map_err(|source| ProfileError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let profile =
        pprof::protos::Profile::decode(bytes.as_slice()).map_err(|e| ProfileError::Write {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
    let name = |i: i64| {
        profile
            .string_table
            .get(i as usize)
            .cloned()
            .unwrap_or_default()
    };
    Ok(PbContents {
        samples: profile.sample.iter().filter_map(|s| s.value.first()).sum(),
        functions: profile.function.iter().map(|f| name(f.name)).collect(),
    })
}
