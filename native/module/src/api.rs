//! The few functions of Redis's module API this module uses, bound by hand.
//!
//! A module finds Redis's functions by name through the `GetApi` pointer Redis hands it in the
//! first field of the load context (what `RedisModule_Init` in `redismodule.h` does). The
//! constants are those of `redismodule.h` (Redis 7.0; API version 1, which later Redis keeps).

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_long, c_longlong, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

#[repr(C)]
pub struct Ctx {
    _private: [u8; 0],
}
#[repr(C)]
pub struct RString {
    _private: [u8; 0],
}
#[repr(C)]
pub struct Key {
    _private: [u8; 0],
}
#[repr(C)]
pub struct CallReply {
    _private: [u8; 0],
}

pub const OK: c_int = 0;
pub const ERR: c_int = 1;
pub const READ: c_int = 1;
pub const WRITE: c_int = 2;
pub const LIST_HEAD: c_int = 0;
pub const LIST_TAIL: c_int = 1;

pub const KEYTYPE_EMPTY: c_int = 0;

pub const KEYTYPE_LIST: c_int = 2;
pub const KEYTYPE_HASH: c_int = 3;
pub const REPLY_STRING: c_int = 0;

/// The value `HashSet` takes to delete a field.
#[allow(clippy::manual_dangling_ptr)] // Redis reads the value 1 as "delete"
pub const HASH_DELETE: *mut RString = 1 as *mut RString;

pub type CmdFunc = unsafe extern "C" fn(*mut Ctx, *mut *mut RString, c_int) -> c_int;

/// Redis's functions, found once when the module loads.
pub struct Api {
    pub set_module_attribs: unsafe extern "C" fn(*mut Ctx, *const c_char, c_int, c_int),
    pub create_command: unsafe extern "C" fn(
        *mut Ctx,
        *const c_char,
        CmdFunc,
        *const c_char,
        c_int,
        c_int,
        c_int,
    ) -> c_int,
    pub string_ptr_len: unsafe extern "C" fn(*const RString, *mut usize) -> *const c_char,
    pub create_string: unsafe extern "C" fn(*mut Ctx, *const c_char, usize) -> *mut RString,
    pub open_key: unsafe extern "C" fn(*mut Ctx, *mut RString, c_int) -> *mut Key,
    pub close_key: unsafe extern "C" fn(*mut Key),
    pub key_type: unsafe extern "C" fn(*mut Key) -> c_int,
    pub value_length: unsafe extern "C" fn(*mut Key) -> usize,
    pub hash_get: unsafe extern "C" fn(*mut Key, c_int, ...) -> c_int,
    pub hash_set: unsafe extern "C" fn(*mut Key, c_int, ...) -> c_int,
    pub string_set: unsafe extern "C" fn(*mut Key, *mut RString) -> c_int,
    pub set_expire: unsafe extern "C" fn(*mut Key, c_longlong) -> c_int,
    pub delete_key: unsafe extern "C" fn(*mut Key) -> c_int,
    pub list_get: unsafe extern "C" fn(*mut Key, c_long) -> *mut RString,
    pub list_push: unsafe extern "C" fn(*mut Key, c_int, *mut RString) -> c_int,
    pub list_pop: unsafe extern "C" fn(*mut Key, c_int) -> *mut RString,
    pub call: unsafe extern "C" fn(*mut Ctx, *const c_char, *const c_char, ...) -> *mut CallReply,
    pub call_reply_type: unsafe extern "C" fn(*mut CallReply) -> c_int,
    pub call_reply_length: unsafe extern "C" fn(*mut CallReply) -> usize,
    pub call_reply_array_element: unsafe extern "C" fn(*mut CallReply, usize) -> *mut CallReply,
    pub call_reply_string_ptr: unsafe extern "C" fn(*mut CallReply, *mut usize) -> *const c_char,
    pub free_call_reply: unsafe extern "C" fn(*mut CallReply),
    pub reply_with_array: unsafe extern "C" fn(*mut Ctx, c_long) -> c_int,
    pub reply_with_long_long: unsafe extern "C" fn(*mut Ctx, c_longlong) -> c_int,
    pub reply_with_string_buffer: unsafe extern "C" fn(*mut Ctx, *const c_char, usize) -> c_int,
    pub reply_with_error: unsafe extern "C" fn(*mut Ctx, *const c_char) -> c_int,
    pub replicate_verbatim: unsafe extern "C" fn(*mut Ctx) -> c_int,
    pub auto_memory: unsafe extern "C" fn(*mut Ctx),
    pub wrong_arity: unsafe extern "C" fn(*mut Ctx) -> c_int,
    pub is_keys_position_request: unsafe extern "C" fn(*mut Ctx) -> c_int,
    pub key_at_pos: unsafe extern "C" fn(*mut Ctx, c_int),
}

static API: OnceLock<Api> = OnceLock::new();

/// Redis's functions (the module is loaded, so they were found).
pub fn api() -> &'static Api {
    API.get().expect("the module was loaded")
}

type GetApi = unsafe extern "C" fn(*const c_char, *mut c_void) -> c_int;

/// Find every function by name; `None` when this Redis lacks one (too old for the module).
///
/// # Safety
/// `ctx` is the context Redis passed to `RedisModule_OnLoad`.
pub unsafe fn load(ctx: *mut Ctx) -> Result<(), String> {
    let get_api: GetApi = std::mem::transmute(*(ctx as *mut *mut c_void));
    unsafe fn find<T: Copy>(get_api: GetApi, name: &CStr) -> Result<T, String> {
        let mut found: *mut c_void = ptr::null_mut();
        let slot = &mut found as *mut *mut c_void as *mut c_void;
        if get_api(name.as_ptr(), slot) != OK || found.is_null() {
            return Err(format!("this Redis has no {}", name.to_string_lossy()));
        }
        Ok(std::mem::transmute_copy(&found))
    }
    let api = Api {
        set_module_attribs: find(get_api, c"RedisModule_SetModuleAttribs")?,
        create_command: find(get_api, c"RedisModule_CreateCommand")?,
        string_ptr_len: find(get_api, c"RedisModule_StringPtrLen")?,
        create_string: find(get_api, c"RedisModule_CreateString")?,
        open_key: find(get_api, c"RedisModule_OpenKey")?,
        close_key: find(get_api, c"RedisModule_CloseKey")?,
        key_type: find(get_api, c"RedisModule_KeyType")?,
        value_length: find(get_api, c"RedisModule_ValueLength")?,
        hash_get: find(get_api, c"RedisModule_HashGet")?,
        hash_set: find(get_api, c"RedisModule_HashSet")?,
        string_set: find(get_api, c"RedisModule_StringSet")?,
        set_expire: find(get_api, c"RedisModule_SetExpire")?,
        delete_key: find(get_api, c"RedisModule_DeleteKey")?,
        list_get: find(get_api, c"RedisModule_ListGet")?,
        list_push: find(get_api, c"RedisModule_ListPush")?,
        list_pop: find(get_api, c"RedisModule_ListPop")?,
        call: find(get_api, c"RedisModule_Call")?,
        call_reply_type: find(get_api, c"RedisModule_CallReplyType")?,
        call_reply_length: find(get_api, c"RedisModule_CallReplyLength")?,
        call_reply_array_element: find(get_api, c"RedisModule_CallReplyArrayElement")?,
        call_reply_string_ptr: find(get_api, c"RedisModule_CallReplyStringPtr")?,
        free_call_reply: find(get_api, c"RedisModule_FreeCallReply")?,
        reply_with_array: find(get_api, c"RedisModule_ReplyWithArray")?,
        reply_with_long_long: find(get_api, c"RedisModule_ReplyWithLongLong")?,
        reply_with_string_buffer: find(get_api, c"RedisModule_ReplyWithStringBuffer")?,
        reply_with_error: find(get_api, c"RedisModule_ReplyWithError")?,
        replicate_verbatim: find(get_api, c"RedisModule_ReplicateVerbatim")?,
        auto_memory: find(get_api, c"RedisModule_AutoMemory")?,
        wrong_arity: find(get_api, c"RedisModule_WrongArity")?,
        is_keys_position_request: find(get_api, c"RedisModule_IsKeysPositionRequest")?,
        key_at_pos: find(get_api, c"RedisModule_KeyAtPos")?,
    };
    let _ = API.set(api);
    Ok(())
}
