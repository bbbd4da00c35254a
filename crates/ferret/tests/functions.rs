//! End-to-end: bpftrace's library functions loaded into the real kernel
//! (the verifier accepts them) and run on real events.

mod common;

use std::io::Write;

use common::{TempDir, Tracer, kernel_or_skip, run_prog, run_trigger, unique_name};

macro_rules! kernel {
    () => {
        if !kernel_or_skip(module_path!()) {
            return;
        }
    };
}

/// Runs a begin-only program and returns its stdout; stderr must be empty.
fn begin(program: &str) -> String {
    run_prog(&["-q"], &format!("begin {{ {program} }}"), &[])
        .ok()
        .to_string()
}

#[test]
fn string_functions() {
    kernel!();
    let out = begin(
        r#"$s = "a longer string with words";
           printf("%d %d %d\n", strlen(comm), strlen($s), strlen(""));
           printf("%d %d %d\n", strncmp(comm, "ferret", 6), strncmp("abc", "abd", 3), strncmp("abc", "abd", 2));
           printf("%d %d %d\n", strcontains($s, "words"), strcontains($s, "wordy"), strcontains(comm, "erre"));
           print(strcontains(comm, ""));"#,
    );
    assert_eq!(out, "6 26 0\n0 1 0\n1 0 1\ntrue\n\n\n");
}

#[test]
fn buffers_print_with_r_rx_rh() {
    kernel!();
    let out = begin(
        r#"$b = buf("ab\x01\xffc", 5);
           printf("%r|%rx|%rh\n", $b, $b, $b);
           print($b);
           @b = buf("xy\n", 3);"#,
    );
    assert_eq!(
        out,
        "ab\\x01\\xffc|\\x61\\x62\\x01\\xff\\x63|61 62 01 ff 63\nab\\x01\\xffc\n\n\n@b: xy\\x0a\n"
    );
}

#[test]
fn buf_reads_a_write_buffer() {
    kernel!();
    let name = unique_name("bufw");
    let dir = TempDir::new("bufw");
    let script = dir.path("w.sh");
    std::fs::write(&script, "#!/bin/sh\nprintf 'he\\001lo' > /dev/null\n").expect("script");
    let exe = dir.alias(&name, "/bin/sh");
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_write /comm == $1/ {
             printf("%r %d\n", buf(args.buf, args.count), args.count); exit();
           }"#,
        &[&name],
    );
    run_trigger(&exe, &[script.to_str().unwrap()]);
    assert_eq!(t.finish().ok(), "he\\x01lo 5\n\n\n");
}

#[test]
fn addresses() {
    kernel!();
    let out = begin(
        r#"printf("%s %s %s\n", ntop(0x0100007f), ntop(pton("10.1.2.3")), ntop(pton("fe80::1")));
           printf("%s %s\n", ntop(10, pton("::ffff:1.2.3.4")), ntop(2, 0x0403020a));
           print(pton("127.0.0.1"));
           printf("%s\n", macaddr(buf("\x18\xc0\x4d\x08\x2e\x7b", 6)));
           @[ntop(pton("192.168.1.1"))] = 1;"#,
    );
    assert_eq!(
        out,
        "127.0.0.1 10.1.2.3 fe80::1\n::ffff:1.2.3.4 10.2.3.4\n[127,0,0,1]\n18:C0:4D:08:2E:7B\n\n\n@[192.168.1.1]: 1\n"
    );
}

#[test]
fn ntop_of_tracepoint_byte_arrays() {
    kernel!();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:sock:inet_sock_set_state /args.dport == $1 && args.newstate == 2/ {
             printf("%s -> %s\n", ntop(args.saddr), ntop(args.daddr)); exit();
           }"#,
        &[&port.to_string()],
    );
    let _conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    assert_eq!(t.finish().ok(), "127.0.0.1 -> 127.0.0.1\n\n\n");
}

#[test]
fn join_prints_execve_arguments() {
    kernel!();
    let name = unique_name("join");
    let dir = TempDir::new("join");
    let exe = dir.alias(&name, "/bin/true");
    let path = exe.to_str().unwrap().to_string();
    let t = Tracer::start_prog(
        &["-q"],
        r#"tracepoint:syscalls:sys_enter_execve /str(args.filename) == str($1)/ {
             join(args.argv); join(args.argv, ","); exit();
           }"#,
        &[&path],
    );
    run_trigger(&exe, &["one", "two words"]);
    assert_eq!(
        t.finish().ok(),
        format!("{path} one two words\n{path},one,two words\n\n\n")
    );
}

#[test]
fn time_strftime_and_strerror() {
    kernel!();
    let out = begin(
        r#"time("%Y|");
           printf("%s|%s|%s\n", strftime("%Y", nsecs), strerror(2), strerror(-13));
           printf("%s\n", strftime("%f", 1500));"#,
    );
    let year = String::from_utf8(
        std::process::Command::new("date")
            .arg("+%Y")
            .output()
            .expect("date")
            .stdout,
    )
    .expect("utf-8");
    let year = year.trim();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("{year}|{year}|No such file or directory|Permission denied")
    );
    // %f is the microseconds of the boot time plus 1.5 us: six digits.
    assert_eq!(lines[1].len(), 6, "{out}");
}

#[test]
fn maps_has_key_delete_and_print_top_div() {
    kernel!();
    let out = begin(
        r#"@m[1, "x"] = 1; @m[2, "y"] = 2;
           printf("%d %d\n", has_key(@m, (1, "x")), has_key(@m, (3, "x")));
           printf("%d %d\n", delete(@m, (1, "x")), delete(@m, (1, "x")));
           @c[1] = 10; @c[2] = 20; @c[3] = 30; @c[4] = 40;
           print(@c, 2, 10);
           clear(@c); clear(@m);
           @z["k"] = 5; zero(@z);"#,
    );
    assert_eq!(out, "1 0\n1 0\n@c[3]: 3\n@c[4]: 4\n\n\n@z[k]: 0\n");
}

#[test]
fn values_tuples_arrays_bools_and_sizes() {
    kernel!();
    let out = begin(
        r#"$t = (1, "two", (3, true));
           print($t); print($t.2.0); print($t[1]);
           @t = $t;
           $a = (uint8[4])0x01020304;
           print($a); print($a[3]); print((uint32)$a);
           print(sizeof(comm)); print(sizeof(uint16)); print(sizeof($a));
           print(bswap((uint32)0x11223344));
           print(1 == 1); print((int8)-1); print((uint8)300);"#,
    );
    assert_eq!(
        out,
        "(1, two, (3, true))\n3\ntwo\n[4,3,2,1]\n1\n16909060\n16\n2\n4\n1144201745\ntrue\n-1\n44\n\n\n@t: (1, two, (3, true))\n"
    );
}

#[test]
fn compile_time_values() {
    kernel!();
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let addr = kallsyms
        .lines()
        .find(|l| l.ends_with(" T default_banner"))
        .and_then(|l| l.split(' ').next())
        .expect("default_banner in kallsyms");
    use std::os::unix::fs::MetadataExt;
    let cgroup = std::fs::metadata("/sys/fs/cgroup").expect("cgroupfs").ino();
    let out = begin(
        r#"printf("%lx %d %s %s %d\n", kaddr("default_banner"), cgroupid("/sys/fs/cgroup"),
                  probetype, username, jiffies > 0);"#,
    );
    assert_eq!(out, format!("{addr} {cgroup} special root 1\n\n\n"));
}

#[test]
fn system_and_cat_with_unsafe() {
    kernel!();
    let dir = TempDir::new("cat");
    let file = dir.path("text");
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(b"line one\nline two\n"))
        .expect("write file");
    let out = run_prog(
        &["-q", "--unsafe"],
        r#"begin { system("echo %s %d", "hi", 42); cat("%s", str($1)); }"#,
        &[file.to_str().unwrap()],
    );
    assert_eq!(out.ok(), "hi 42\n\nline one\nline two\n\n\n");
}

#[test]
fn signal_kills_the_traced_process() {
    kernel!();
    let name = unique_name("sig");
    let dir = TempDir::new("sig");
    let exe = dir.alias(&name, "/bin/sleep");
    let t = Tracer::start_prog(
        &["-q", "--unsafe"],
        r#"tracepoint:syscalls:sys_enter_clock_nanosleep /comm == $1/ { signal("SIGUSR1"); exit(); }"#,
        &[&name],
    );
    let status = std::process::Command::new(&exe)
        .arg("5")
        .status()
        .expect("run sleep");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(10), "killed by SIGUSR1: {status}");
    t.finish().ok();
}

#[test]
fn errorf_warnf_and_runtime_errors_go_to_stderr() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { warnf("careful: %d", 1); $z = 0; printf("%d\n", 7 / $z); errorf("bad %s", "thing"); }"#,
        &[],
    );
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout, "1\n\n\n");
    assert!(
        out.stderr.starts_with("stdin:1:9: WARNING: careful: 1\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("warning: Divide or modulo by 0 detected. This can lead to unexpected results. 1 is being used as the result."),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.ends_with("stdin:1:66: ERROR: bad thing\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn assert_exits_with_an_error() {
    kernel!();
    let out = run_prog(
        &["-q"],
        r#"begin { assert(1 == 1, "fine"); assert(comm == "x", "not x"); printf("unreached\n"); }"#,
        &[],
    );
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stdout, "\n\n");
    assert_eq!(out.stderr, "stdin:1:33: ERROR: assert failed: not x\n");
}
