//! `log.csv`: appending a row under a lock, reading every row back.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::*;

/// Path of the log inside an experiments directory.
pub fn log_path(experiments_dir: &Path) -> PathBuf {
    experiments_dir.join(LOG_FILE)
}

/// Appends one row to `<experiments_dir>/log.csv`, creating the directory
/// and the file (with its header) when needed.
///
/// The whole row is formatted first and written with one `write_all` while
/// holding an exclusive `flock`, so runs finishing at the same moment (threads
/// or processes) each land as an intact line; the header check happens under
/// the same lock, so exactly one writer creates it.
pub fn append_run(experiments_dir: &Path, record: &RunRecord) -> Result<(), RunLogError> {
    let path = log_path(experiments_dir);
    fs::create_dir_all(experiments_dir).map_err(|e| RunLogError::io(experiments_dir, e))?;
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| RunLogError::io(&path, e))?;
    let _lock = FileLock::exclusive(&file).map_err(|e| RunLogError::io(&path, e))?;

    let len = file
        .metadata()
        .map_err(|e| RunLogError::io(&path, e))?
        .len();
    let mut buf = Vec::with_capacity(512);
    if len == 0 {
        buf.extend(csv_line(COLUMNS.iter().copied()));
    } else if !ends_with_newline(&file, len) {
        // A previous writer died mid-line: start ours on a fresh line so it
        // stays readable (the torn line is reported by the reader).
        buf.push(b'\n');
    }
    let fields = record.to_fields();
    buf.extend(csv_line(fields.iter().map(String::as_str)));
    (&file)
        .write_all(&buf)
        .map_err(|e| RunLogError::io(&path, e))?;
    (&file).flush().map_err(|e| RunLogError::io(&path, e))?;
    Ok(())
}

fn ends_with_newline(file: &File, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let mut last = [0u8; 1];
    matches!(file.read_at(&mut last, len - 1), Ok(1) if last[0] == b'\n')
}

/// One CSV line (RFC 4180 quoting, `\n` terminator).
fn csv_line<'a>(fields: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    let record: csv::StringRecord = fields.collect();
    // Writing into a Vec cannot fail.
    let _ = w.write_record(&record);
    w.into_inner().unwrap_or_default()
}

/// An advisory exclusive lock on an open file, released on drop.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn exclusive(file: &'a File) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: flock on a valid open descriptor has no other preconditions.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(FileLock(file));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above; closing the file would release it anyway.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// Reads every row of a log file, strictly: the first row that is not
/// valid data (torn, wrong field count, bad value, newer schema) is an
/// error naming `file:line`. Browsing tools use [`read_log_all`], which
/// keeps every other run.
pub fn read_log(path: &Path) -> Result<Vec<RunRecord>, RunLogError> {
    let log = read_log_all(path)?;
    match log.bad.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(log.runs),
    }
}

/// A log read for browsing: the valid runs, and each row that is not data
/// (with its line) — one bad row never hides the others.
#[derive(Debug)]
pub struct LogRead {
    pub runs: Vec<RunRecord>,
    /// Rows skipped, each a `file:line: why` error.
    pub bad: Vec<RunLogError>,
}

impl LogRead {
    /// One line per skipped row, for a warning under a table.
    pub fn warnings(&self) -> Vec<String> {
        self.bad
            .iter()
            .map(|e| format!("warning: {e} (row skipped)"))
            .collect()
    }
}

/// Reads every valid row; only a missing or headless file is an error.
pub fn read_log_all(path: &Path) -> Result<LogRead, RunLogError> {
    let file = File::open(path).map_err(|e| RunLogError::io(path, e))?;
    read_log_from(path, io::BufReader::new(file))
}

/// Like [`read_log_all`] over any reader; `path` is only used in errors.
pub fn read_log_from(path: &Path, input: impl io::Read) -> Result<LogRead, RunLogError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut out = LogRead {
        runs: Vec::new(),
        bad: Vec::new(),
    };
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) if e.is_io_error() => {
                let csv::ErrorKind::Io(io) = e.into_kind() else {
                    unreachable!("is_io_error")
                };
                return Err(RunLogError::io(path, io));
            }
            Err(e) => {
                // Not UTF-8 and the like: that row only.
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                out.bad
                    .push(RunLogError::malformed(path, line, e.to_string()));
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(line);
        if first {
            first = false;
            if record.get(0) != Some(COLUMNS[0]) {
                return Err(RunLogError::malformed(
                    path,
                    line,
                    "no header: the first line must start with 'schema_version'",
                ));
            }
            continue;
        }
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue; // blank line
        }
        let version = record.get(0).unwrap_or("").trim().parse::<u32>();
        if let Ok(found) = version.clone() {
            if found > SCHEMA_VERSION {
                out.bad.push(RunLogError::NewerSchema {
                    path: path.to_path_buf(),
                    line,
                    found,
                    supported: SCHEMA_VERSION,
                });
                continue;
            }
        }
        let fields: Vec<&str> = record.iter().collect();
        match RunRecord::from_fields(&fields) {
            Ok(run) => out.runs.push(run),
            Err(msg) => out.bad.push(RunLogError::malformed(path, line, msg)),
        }
    }
    if first {
        return Err(RunLogError::malformed(path, 1, "empty file: no header"));
    }
    Ok(out)
}
