//! The safe layer's checks against a real EAL (one per process: this file
//! is its own test binary, and everything runs in one test function).
//! Lifetime rules are checked at compile time: see the `compile_fail`
//! examples in `src/lib.rs`.

use dpdk::{Device, Eal, Mempool, PortConfig};

#[test]
fn queues_lcores_and_scopes_are_checked() {
    let eal = Eal::init(&[
        "--no-huge",
        "-m",
        "64",
        "--no-pci",
        "--no-shconf",
        "--no-telemetry",
        "--log-level=error",
        "-l",
        "0-1",
        "--vdev",
        "net_null0,no-rx=1",
    ])
    .expect("EAL");
    assert!(matches!(
        Eal::init(&["--no-huge"]),
        Err(dpdk::DpdkError::EalAlreadyInit)
    ));

    // Lcore ids: enabled ones only, below RTE_MAX_LCORE.
    let main = eal.main_lcore();
    assert_eq!(eal.lcore(main.id()).unwrap(), main);
    assert!(eal
        .lcore(100_000)
        .unwrap_err()
        .to_string()
        .contains("above"));
    assert!(eal
        .lcore(100)
        .unwrap_err()
        .to_string()
        .contains("not enabled"));
    let workers = eal.worker_lcores();
    assert_eq!(workers.len(), 1);
    assert!(!eal.lcore_cpus(main).is_empty());

    let pool = Mempool::new(&eal, "t", 2047, 32, 2048, 0).expect("pool");
    assert_eq!(pool.data_room(), 2048);
    let dev = Device::probe(&eal, "net_null0,no-rx=1").expect("probe");
    // One owner per port: a second probe of the same device is refused, so
    // it cannot close the port under the first one's workers.
    let e = Device::probe(&eal, "net_null0,no-rx=1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("already attached"), "{e}");
    let conf = PortConfig {
        rx_queues: 2,
        tx_queues: 1,
        rx_desc: 128,
        tx_desc: 128,
        mtu: 1500,
    };
    // A pool too small for the MTU is refused before anything is set up.
    let small = Mempool::new(&eal, "small", 1023, 0, 1000, 0).expect("small pool");
    let dev2 = Device::probe(&eal, "net_null1,no-rx=1").expect("probe");
    let e = dev2.configure(&conf, &small, 0).unwrap_err().to_string();
    assert!(e.contains("MTU 1500 needs 1522-byte buffers"), "{e}");

    let mut port = dev.configure(&conf, &pool, 0).expect("configure");
    assert_eq!(port.queues(), (2, 1));
    port.start().expect("start");
    {
        // Only configured queues, each once.
        let rx0 = port.rx_queue(0).expect("rx 0");
        assert!(port
            .rx_queue(0)
            .unwrap_err()
            .to_string()
            .contains("already taken"));
        assert!(port
            .rx_queue(2)
            .unwrap_err()
            .to_string()
            .contains("not configured"));
        assert!(port
            .tx_queue(1)
            .unwrap_err()
            .to_string()
            .contains("not configured"));
        let mut tx0 = port.tx_queue(0).expect("tx 0");
        let monitor = port.monitor();

        // A scope joins its jobs; the main lcore cannot be launched on.
        let ran = std::sync::atomic::AtomicBool::new(false);
        let code = eal.scope(|s| {
            assert!(s.launch(main, || 0).is_err());
            s.launch(workers[0], || {
                ran.store(true, std::sync::atomic::Ordering::SeqCst);
                // The job borrows the queue and the monitor.
                let mut rx0 = rx0;
                let mut v = Vec::with_capacity(dpdk::BURST);
                let (n, _) = rx0.burst(&mut v);
                assert_eq!(n, 0, "no-rx");
                let _ = monitor.stats();
                7
            })
            .unwrap();
            assert!(s.launch(workers[0], || 0).is_err(), "busy lcore");
            s.wait(workers[0])
        });
        assert_eq!(code, Some(7));
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));

        // A panicking job is reported, not unwound into C.
        let code = eal.scope(|s| {
            s.launch(workers[0], || panic!("on purpose")).unwrap();
            s.wait(workers[0])
        });
        assert_eq!(code, Some(dpdk::JOB_PANICKED));

        let mut m = pool.alloc().expect("an mbuf");
        // The whole buffer: headroom, (empty) data, room after.
        let (buf, head, len) = m.buffer_mut();
        assert_eq!(
            (buf.len(), head, len),
            (2048 + dpdk::HEADROOM as usize, 128, 0)
        );
        buf[100..160].fill(7);
        assert!(m.set_bounds(100, 60), "a frame grown in front");
        assert_eq!((m.data().len(), m.len(), m.headroom()), (60, 60, 100));
        assert!(m.data().iter().all(|&b| b == 7));
        assert!(!m.set_bounds(0, 2048 + 129), "past the buffer");
        assert_eq!(m.len(), 60, "unchanged after a refused move");
        let info = m.rx_info(None);
        assert_eq!(
            info,
            dpdk::RxInfo::default(),
            "not received: the driver said nothing"
        );
        tx0.push(m);
        tx0.flush();
        assert_eq!(tx0.sent, 1);
        // An mbuf of another pool is refused (freed and counted): the
        // device could keep it past that pool's life.
        let other = small.alloc().expect("an mbuf of the small pool");
        tx0.push(other);
        tx0.flush();
        assert_eq!((tx0.sent, tx0.dropped), (1, 1));
    }
    port.stop();
    drop(port);

    // A ring hands mbufs from a worker lcore to this one; what is left in
    // it when it goes is freed.
    let before = pool.available();
    {
        let ring = dpdk::MbufRing::new(&pool, "t_ring", 64, 0).expect("ring");
        let mut rx = ring.receiver().expect("the receiver");
        assert!(ring.receiver().is_none(), "one receiver");
        let tx = ring.sender();
        let sent = eal.scope(|s| {
            s.launch(workers[0], || {
                let mut v: Vec<_> = (0..40).map(|_| pool.alloc().unwrap()).collect();
                let a = tx.send(&mut v);
                let b = tx.send(&mut v);
                assert!(v.is_empty());
                (a + b) as i32
            })
            .unwrap();
            s.wait(workers[0])
        });
        assert_eq!(sent, Some(40));
        let mut got = Vec::new();
        while rx.recv(&mut got) > 0 {}
        assert_eq!(got.len(), 40);
        drop(got);
        let mut v: Vec<_> = (0..70).map(|_| pool.alloc().unwrap()).collect();
        let mut n = 0;
        while !v.is_empty() {
            let k = tx.send(&mut v);
            if k == 0 {
                break;
            }
            n += k;
        }
        assert_eq!(n, 63, "a 64-slot ring holds 63");
        drop(v);
    }
    assert_eq!(pool.available(), before, "every mbuf back in the pool");
    drop(small);
    drop(pool);
    drop(eal);
}
