//! A command's view of Redis: its arguments, the keys it reads and writes, its reply.
//!
//! Hashes, string writes and existence go through the key API (no command, no reply to
//! parse); a string's value is read with `GET`/`MGET` through `RedisModule_Call`, because the
//! key API's only way to a string's bytes (`StringDMA`) rewrites a short string it reads.

use crate::api::{self, api, Ctx, Key, RString};
use std::ffi::{c_char, c_int};
use std::ptr;

/// What a command answers: built whole, then sent (a command that fails answers the error
/// instead of half a reply).
pub enum Reply {
    Int(i64),
    Bulk(Vec<u8>),
    Array(Vec<Reply>),
}

/// A command's failure, answered as Redis's error reply.
pub struct Failure(pub String);

pub type Outcome<T> = Result<T, Failure>;

pub fn wrong_type() -> Failure {
    Failure("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}

pub fn bad(what: &str) -> Failure {
    Failure(format!("ERR {what}"))
}

/// One call of a command.
pub struct Store {
    ctx: *mut Ctx,
    argv: *mut *mut RString,
    argc: usize,
}

/// A key opened for the length of one operation (closed when dropped).
struct Open(*mut Key);

impl Drop for Open {
    fn drop(&mut self) {
        if !self.0.is_null() {
            unsafe { (api().close_key)(self.0) }
        }
    }
}

impl Store {
    /// # Safety
    /// The arguments are those Redis passed to the command's function.
    pub unsafe fn new(ctx: *mut Ctx, argv: *mut *mut RString, argc: c_int) -> Self {
        (api().auto_memory)(ctx);
        Store { ctx, argv, argc: argc as usize }
    }

    pub fn argc(&self) -> usize {
        self.argc
    }

    /// The bytes of argument `i` (0 is the command's name).
    pub fn arg(&self, i: usize) -> &[u8] {
        unsafe { bytes_of(*self.argv.add(i)) }
    }

    /// Argument `i` as Redis's string (no copy).
    pub fn arg_string(&self, i: usize) -> *mut RString {
        unsafe { *self.argv.add(i) }
    }

    pub fn string(&self, bytes: &[u8]) -> *mut RString {
        unsafe { (api().create_string)(self.ctx, bytes.as_ptr() as *const c_char, bytes.len()) }
    }

    fn open(&self, name: *mut RString, mode: c_int) -> Open {
        Open(unsafe { (api().open_key)(self.ctx, name, mode) })
    }

    /// A key opened to be written, which must hold `kind` or nothing yet.
    fn open_to_write(&self, name: *mut RString, kind: c_int) -> Outcome<Open> {
        let key = self.open(name, api::READ | api::WRITE);
        let found = unsafe { (api().key_type)(key.0) };
        if found != kind && found != api::KEYTYPE_EMPTY {
            return Err(wrong_type());
        }
        Ok(key)
    }

    /// A key that holds `kind`, opened with `mode`; None when there is no such key.
    fn open_existing(&self, name: *mut RString, mode: c_int, kind: c_int) -> Outcome<Option<Open>> {
        let key = self.open(name, mode);
        if key.0.is_null() {
            return Ok(None);
        }
        match unsafe { (api().key_type)(key.0) } {
            api::KEYTYPE_EMPTY => Ok(None),
            found if found == kind => Ok(Some(key)),
            _ => Err(wrong_type()),
        }
    }

    /// Whether the key exists (an expired one does not).
    pub fn exists(&self, name: *mut RString) -> bool {
        !self.open(name, api::READ).0.is_null()
    }

    /// `SET name value`, with a time to live in seconds when given.
    pub fn set(&self, name: *mut RString, value: &[u8], ttl: Option<i64>) -> Outcome<()> {
        let key = self.open(name, api::READ | api::WRITE);
        unsafe {
            if (api().string_set)(key.0, self.string(value)) != api::OK {
                return Err(bad("could not set a string"));
            }
            if let Some(seconds) = ttl {
                (api().set_expire)(key.0, seconds * 1000);
            }
        }
        Ok(())
    }

    pub fn del(&self, name: *mut RString) {
        let key = self.open(name, api::READ | api::WRITE);
        unsafe { (api().delete_key)(key.0) };
    }

    /// `GET name`.
    pub fn get(&self, name: *mut RString) -> Outcome<Option<Vec<u8>>> {
        Ok(self.mget(&[name])?.pop().flatten())
    }

    /// `MGET` of the keys: their values, `None` where a key is missing or not a string.
    pub fn mget(&self, names: &[*mut RString]) -> Outcome<Vec<Option<Vec<u8>>>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let a = api();
        unsafe {
            let reply = (a.call)(
                self.ctx,
                c"MGET".as_ptr(),
                c"v".as_ptr(),
                names.as_ptr() as *mut *mut RString,
                names.len(),
            );
            if reply.is_null() {
                return Err(bad("MGET failed"));
            }
            let mut out = Vec::with_capacity(names.len());
            for i in 0..(a.call_reply_length)(reply) {
                let element = (a.call_reply_array_element)(reply, i);
                if (a.call_reply_type)(element) == api::REPLY_STRING {
                    let mut len = 0usize;
                    let data = (a.call_reply_string_ptr)(element, &mut len);
                    out.push(Some(std::slice::from_raw_parts(data as *const u8, len).to_vec()));
                } else {
                    out.push(None);
                }
            }
            (a.free_call_reply)(reply);
            Ok(out)
        }
    }

    /// Set fields of a hash named by bytes (`HSET name field value ...`).
    pub fn hset_bytes(&self, name: *mut RString, fields: &[(&[u8], &[u8])]) -> Outcome<()> {
        if fields.is_empty() {
            return Ok(());
        }
        let key = self.open_to_write(name, api::KEYTYPE_HASH)?;
        for (field, value) in fields {
            unsafe {
                (api().hash_set)(key.0, 0, self.string(field), self.string(value), ptr::null::<c_char>());
            }
        }
        Ok(())
    }

    /// Delete fields of a hash named by bytes (`HDEL`); a hash left empty goes.
    pub fn hdel_bytes(&self, name: *mut RString, fields: &[&[u8]]) -> Outcome<()> {
        let Some(key) = self.open_existing(name, api::READ | api::WRITE, api::KEYTYPE_HASH)? else {
            return Ok(());
        };
        for field in fields {
            unsafe {
                (api().hash_set)(key.0, 0, self.string(field), api::HASH_DELETE, ptr::null::<c_char>());
            }
        }
        Ok(())
    }

    /// One field of a hash (`HGET`).
    pub fn hget(&self, name: *mut RString, field: &[u8]) -> Outcome<Option<Vec<u8>>> {
        let Some(key) = self.open_existing(name, api::READ, api::KEYTYPE_HASH)? else {
            return Ok(None);
        };
        let mut value: *mut RString = ptr::null_mut();
        unsafe {
            (api().hash_get)(key.0, 0, self.string(field), &mut value as *mut *mut RString, ptr::null::<c_char>());
        }
        Ok(if value.is_null() { None } else { Some(unsafe { bytes_of(value) }.to_vec()) })
    }

    /// `RPUSH name value...`: the list's length after.
    pub fn rpush(&self, name: *mut RString, values: &[&[u8]]) -> Outcome<usize> {
        let key = self.open_to_write(name, api::KEYTYPE_LIST)?;
        for value in values {
            unsafe { (api().list_push)(key.0, api::LIST_TAIL, self.string(value)) };
        }
        Ok(unsafe { (api().value_length)(key.0) })
    }

    /// Keep only the last `keep` elements of a list (`LTRIM name -keep -1`).
    pub fn keep_last(&self, name: *mut RString, keep: usize) -> Outcome<()> {
        let Some(key) = self.open_existing(name, api::READ | api::WRITE, api::KEYTYPE_LIST)? else {
            return Ok(());
        };
        let length = unsafe { (api().value_length)(key.0) };
        for _ in keep..length {
            unsafe { (api().list_pop)(key.0, api::LIST_HEAD) };
        }
        Ok(())
    }

    /// The last `count` elements of a list, or all (`LRANGE name -count -1`, `0 -1`).
    pub fn lrange_last(&self, name: *mut RString, count: Option<usize>) -> Outcome<Vec<Vec<u8>>> {
        let Some(key) = self.open_existing(name, api::READ, api::KEYTYPE_LIST)? else {
            return Ok(Vec::new());
        };
        let length = unsafe { (api().value_length)(key.0) };
        let first = count.map_or(0, |c| length.saturating_sub(c));
        let mut out = Vec::with_capacity(length - first);
        for i in first..length {
            let element = unsafe { (api().list_get)(key.0, i as std::ffi::c_long) };
            out.push(if element.is_null() { Vec::new() } else { unsafe { bytes_of(element) }.to_vec() });
        }
        Ok(out)
    }

    /// Send the reply.
    pub fn reply(&self, reply: &Reply) {
        let a = api();
        unsafe {
            match reply {
                Reply::Int(value) => {
                    (a.reply_with_long_long)(self.ctx, *value);
                }
                Reply::Bulk(bytes) => {
                    (a.reply_with_string_buffer)(self.ctx, bytes.as_ptr() as *const c_char, bytes.len());
                }
                Reply::Array(items) => {
                    (a.reply_with_array)(self.ctx, items.len() as std::ffi::c_long);
                    for item in items {
                        self.reply(item);
                    }
                }
            }
        }
    }

    pub fn reply_error(&self, failure: &Failure) {
        let message = std::ffi::CString::new(failure.0.replace('\0', " ")).unwrap_or_default();
        unsafe { (api().reply_with_error)(self.ctx, message.as_ptr()) };
    }

    /// Have replicas and the append-only file run this command as it was called.
    pub fn replicate(&self) {
        unsafe { (api().replicate_verbatim)(self.ctx) };
    }
}

/// The bytes of a Redis string (valid while the string is).
///
/// # Safety
/// `string` is a live Redis string.
pub unsafe fn bytes_of<'a>(string: *const RString) -> &'a [u8] {
    let mut len = 0usize;
    let data = (api().string_ptr_len)(string, &mut len);
    std::slice::from_raw_parts(data as *const u8, len)
}
