//! bestand's store scripts as a Redis module: the same keys, arguments, effects and replies as
//! the Lua scripts in `src/bestand/store/scripts/`, without the interpreter around each call.
//!
//! Load it with `redis-server --loadmodule <path>/libbestand_redis.so`; a command is called as
//! its script is with `EVALSHA`, without the SHA-1: `bestand.persons_write numkeys key... arg...`.

mod api;
mod graph;
mod persons;
mod store;

use api::{api, Ctx, RString};
use std::ffi::{c_int, CStr};
use store::{Outcome, Reply, Store};

type Command = fn(&Store) -> Outcome<Reply>;

/// The scripts this module's commands mirror, by the SHA-1 of the Lua source they were
/// written for (`bestand.scripts` answers them). bestand uses a command only where the SHA-1
/// is that of the script it ships, so a module built from other sources is never used in
/// place of the script; change a script, and its command here, and the SHA-1 together.
const MIRRORS: [(&str, &str); 4] = [
    ("graph_read", "b14e22e1b1523da17e987e2711b56098c9d4fac1"),
    ("graph_apply", "bf69e4c10896d8140b52aa3c3df979a1bef643de"),
    ("persons_read", "1466412f3796b9a08965641654fb5f5d0480a229"),
    ("persons_write", "05a53f03cebbb4f39ffc60429ee73f8b51068d33"),
];

fn scripts(_: &Store) -> Outcome<Reply> {
    Ok(Reply::Array(
        MIRRORS
            .iter()
            .flat_map(|(name, sha)| [Reply::Bulk(name.as_bytes().to_vec()), Reply::Bulk(sha.as_bytes().to_vec())])
            .collect(),
    ))
}

unsafe extern "C" fn scripts_command(ctx: *mut Ctx, argv: *mut *mut RString, argc: c_int) -> c_int {
    let store = Store::new(ctx, argv, argc);
    if let Ok(reply) = scripts(&store) {
        store.reply(&reply);
    }
    api::OK
}

/// Run one command: answer its reply or its error; a writing one is replicated as called.
unsafe fn run(ctx: *mut Ctx, argv: *mut *mut RString, argc: c_int, command: Command, writes: bool) -> c_int {
    let a = api();
    if (a.is_keys_position_request)(ctx) != 0 {
        // Keys follow numkeys, as a script's do.
        if argc >= 2 {
            let store = Store::new(ctx, argv, argc);
            if let Some(n) = persons::number(store.arg(1)) {
                for i in 0..(n as c_int).min(argc - 2) {
                    (a.key_at_pos)(ctx, 2 + i);
                }
            }
        }
        return api::OK;
    }
    if argc < 2 {
        return (a.wrong_arity)(ctx);
    }
    let store = Store::new(ctx, argv, argc);
    // A bug must cost one call an error reply, never the Redis process: a panic is caught
    // here (Rust unwinds to this frame; nothing of it crosses into Redis).
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| command(&store)));
    match outcome {
        Ok(Ok(reply)) => store.reply(&reply),
        Ok(Err(failure)) => store.reply_error(&failure),
        Err(_) => store.reply_error(&store::Failure("ERR bestand module: internal error".into())),
    }
    if writes {
        store.replicate();
    }
    api::OK
}

macro_rules! command {
    ($name:ident, $function:path, $writes:expr) => {
        unsafe extern "C" fn $name(ctx: *mut Ctx, argv: *mut *mut RString, argc: c_int) -> c_int {
            run(ctx, argv, argc, $function, $writes)
        }
    };
}

command!(graph_read, graph::graph_read, false);
command!(graph_apply, graph::graph_apply, true);
command!(persons_read, persons::persons_read, false);
command!(persons_write, persons::persons_write, true);

/// Called by Redis when it loads the module.
///
/// # Safety
/// Redis calls it with its load context.
#[no_mangle]
pub unsafe extern "C" fn RedisModule_OnLoad(ctx: *mut Ctx, _argv: *mut *mut RString, _argc: c_int) -> c_int {
    if api::load(ctx).is_err() {
        return api::ERR;
    }
    let a = api();
    (a.set_module_attribs)(ctx, c"bestand".as_ptr(), 1, 1);
    let commands: [(&CStr, api::CmdFunc, &CStr); 5] = [
        (c"bestand.scripts", scripts_command, c"readonly fast"),
        (c"bestand.graph_read", graph_read, c"readonly getkeys-api"),
        (c"bestand.graph_apply", graph_apply, c"write deny-oom getkeys-api"),
        (c"bestand.persons_read", persons_read, c"readonly getkeys-api"),
        (c"bestand.persons_write", persons_write, c"write deny-oom getkeys-api"),
    ];
    for (name, function, flags) in commands {
        if (a.create_command)(ctx, name.as_ptr(), function, flags.as_ptr(), 0, 0, 0) != api::OK {
            return api::ERR;
        }
    }
    api::OK
}
