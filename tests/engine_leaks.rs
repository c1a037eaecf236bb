//! 1,000 sequential and 200 concurrent simulated calls leave no task and no memory behind.
//!
//! A counting global allocator measures live heap bytes; tokio's runtime metrics count live
//! tasks. Both are compared after a warm-up batch (lazy statics, pools, caches) and after the
//! measured batches.

mod common;

use callflowd::engine::{EngineConfig, EngineContext, listener};
use callflowd::fakeswitch::{CallScript, dial};
use callflowd::store::memory::MemStore;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn store() -> Arc<MemStore> {
    common::engine::three_step_store(ACCOUNT, "leaks", "silence_stream://0")
}

fn script() -> CallScript {
    CallScript::new("1000").account(Some(ACCOUNT)).lean()
}

async fn batch(addr: std::net::SocketAddr, total: usize, parallel: usize) {
    let mut done = 0;
    while done < total {
        let wave = parallel.min(total - done);
        let calls: Vec<_> = (0..wave)
            .map(|_| tokio::spawn(dial(addr, script())))
            .collect();
        for call in calls {
            let transcript = call.await.expect("call task").expect("dial");
            assert_eq!(transcript.hangup_cause(), Some("NORMAL_CLEARING"));
            assert!(transcript.controller_closed_after_hangup_complete);
        }
        done += wave;
    }
}

async fn settle(ctx: &EngineContext) {
    for _ in 0..200 {
        if ctx.stats.active() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Reader tasks of closed connections finish right after their sockets do.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_leave_no_tasks_or_memory_behind() {
    let config = EngineConfig {
        linger: Duration::from_secs(2),
        ..EngineConfig::default()
    };
    let ctx = EngineContext::new(config, store());
    let esl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = esl.local_addr().unwrap();
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(listener::serve(esl, ctx.clone(), stop_rx));
    let metrics = tokio::runtime::Handle::current().metrics();

    batch(addr, 200, 50).await; // warm-up
    settle(&ctx).await;
    let tasks_before = metrics.num_alive_tasks();
    let bytes_before = LIVE.load(Ordering::Relaxed);

    batch(addr, 1000, 1).await;
    settle(&ctx).await;
    let tasks_after_sequential = metrics.num_alive_tasks();
    let bytes_after_sequential = LIVE.load(Ordering::Relaxed);

    batch(addr, 200, 200).await;
    settle(&ctx).await;
    let tasks_after_concurrent = metrics.num_alive_tasks();
    let bytes_after_concurrent = LIVE.load(Ordering::Relaxed);

    println!(
        "tasks: {tasks_before} -> {tasks_after_sequential} -> {tasks_after_concurrent}; \
         live heap bytes: {bytes_before} -> {bytes_after_sequential} -> {bytes_after_concurrent}"
    );
    assert_eq!(ctx.stats.active(), 0, "no call still held");
    assert_eq!(ctx.stats.calls_finished.load(Ordering::Relaxed), 1400);
    assert_eq!(
        tasks_after_sequential, tasks_before,
        "sequential calls left tasks behind"
    );
    assert_eq!(
        tasks_after_concurrent, tasks_before,
        "concurrent calls left tasks behind"
    );
    // 1,000 calls leaking even 100 bytes each would add 100 KB; allow allocator noise only.
    let growth = bytes_after_sequential - bytes_before;
    assert!(
        growth < 64 * 1024,
        "1,000 sequential calls grew the heap by {growth} bytes"
    );
    let growth = bytes_after_concurrent - bytes_before;
    assert!(
        growth < 64 * 1024,
        "200 concurrent calls grew the heap by {growth} bytes"
    );

    let _ = stop.send(true);
    let _ = server.await;
}
