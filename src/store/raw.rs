//! One query stepped through SQLite's C API directly, for the bulk reads that go over
//! every row of a large table (the export's nodes, stars and conversation ids). rusqlite
//! checks each column's index and type on every read; on a million rows of eight columns
//! those checks measured a sixth of an export (docs/performance.md). Everything unsafe
//! about it is in this file: the statement borrows its connection, is finalized when
//! dropped, and a column's text is only lent until the next step.

use rusqlite::ffi;
use rusqlite::Connection;
use std::ffi::{c_int, CStr};
use std::marker::PhantomData;

pub(super) struct RawScan<'c> {
    stmt: *mut ffi::sqlite3_stmt,
    db: *mut ffi::sqlite3,
    _conn: PhantomData<&'c Connection>,
}

fn error(db: *mut ffi::sqlite3, code: c_int) -> rusqlite::Error {
    // SAFETY: `db` is the live connection the statement was prepared on; errmsg returns
    // a string SQLite owns, copied here before anything else touches the connection.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned();
    rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some(msg))
}

impl<'c> RawScan<'c> {
    /// Prepares `sql` on `conn` with its integer parameters bound in order.
    pub(super) fn new(conn: &'c Connection, sql: &str, args: &[i64]) -> rusqlite::Result<Self> {
        // SAFETY: the handle is used only while `conn` is borrowed (the lifetime 'c), on
        // this thread (Connection is not Sync), and only for this statement's calls.
        let db = unsafe { conn.handle() };
        let mut stmt = std::ptr::null_mut();
        // SAFETY: `sql` is valid for its length in bytes; SQLite writes the statement
        // pointer (or null on an error) into `stmt`.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db,
                sql.as_ptr().cast(),
                sql.len() as c_int,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc));
        }
        let scan = Self {
            stmt,
            db,
            _conn: PhantomData,
        };
        for (i, &a) in args.iter().enumerate() {
            // SAFETY: a live statement; parameters are 1-based.
            let rc = unsafe { ffi::sqlite3_bind_int64(scan.stmt, i as c_int + 1, a) };
            if rc != ffi::SQLITE_OK {
                return Err(error(db, rc));
            }
        }
        Ok(scan)
    }

    /// Binds text to parameter `i` (1-based); SQLite keeps its own copy.
    pub(super) fn bind_text(&mut self, i: usize, text: &str) -> rusqlite::Result<()> {
        // SAFETY: a live statement not yet stepped; SQLITE_TRANSIENT makes SQLite copy the
        // bytes before this returns.
        let rc = unsafe {
            ffi::sqlite3_bind_text(
                self.stmt,
                i as c_int,
                text.as_ptr().cast(),
                text.len() as c_int,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(self.db, rc));
        }
        Ok(())
    }

    /// Moves to the next row; `false` after the last.
    pub(super) fn step(&mut self) -> rusqlite::Result<bool> {
        // SAFETY: a live statement, stepped by its only owner.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(error(self.db, rc)),
        }
    }

    /// Column `i` of the current row as an integer (0 for NULL).
    pub(super) fn int(&self, i: usize) -> i64 {
        // SAFETY: a live statement on a row (`step` returned true); an index out of range
        // returns 0 rather than reading out of bounds.
        unsafe { ffi::sqlite3_column_int64(self.stmt, i as c_int) }
    }

    /// Column `i` as an integer, `None` for NULL.
    pub(super) fn opt_int(&self, i: usize) -> Option<i64> {
        // SAFETY: as for `int`.
        let t = unsafe { ffi::sqlite3_column_type(self.stmt, i as c_int) };
        (t != ffi::SQLITE_NULL).then(|| self.int(i))
    }

    /// Column `i` as the bytes of its text, `None` for NULL; lent until the next `step`.
    pub(super) fn bytes(&self, i: usize) -> Option<&[u8]> {
        // SAFETY: a live statement on a row (an index out of range gives NULL). column_text
        // converts the value to text (NULL stays a null pointer) and column_bytes, called
        // after it as SQLite asks, gives its length; the bytes stay valid until the next
        // step or finalize, which need `&mut self` or `self`, so the borrow of `self`
        // covers them.
        unsafe {
            let p = ffi::sqlite3_column_text(self.stmt, i as c_int);
            if p.is_null() {
                return None;
            }
            let n = ffi::sqlite3_column_bytes(self.stmt, i as c_int) as usize;
            Some(std::slice::from_raw_parts(p, n))
        }
    }

    /// Column `i` as text, `None` for NULL; an error names the column when the bytes
    /// are not UTF-8.
    pub(super) fn text(&self, i: usize) -> rusqlite::Result<Option<&str>> {
        self.bytes(i)
            .map(std::str::from_utf8)
            .transpose()
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
            })
    }
}

impl Drop for RawScan<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is finalized once, by its owner.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
        }
    }
}
