//! The printer keeps each command's output whole however the jobs interleave,
//! and piped output never holds an escape byte.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use makescope::output::{default_label, CommandInfo, Mode, Outcome, Printer, Stream, Summary};

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

/// A tiny deterministic generator: the same "random" schedule on every run.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn info(id: i64) -> CommandInfo {
    CommandInfo {
        id,
        target: format!("/top/sub/obj{id}.o").into_bytes(),
        directory: b"/top/sub".to_vec(),
        top_directory: b"/top".to_vec(),
        command: format!("gcc -c src{id}.c -o /top/sub/obj{id}.o").into_bytes(),
        recipe_file: b"Makefile".to_vec(),
        recipe_line: 12,
        make_level: 1,
    }
}

/// What command `id` prints: several lines, some colored, cut into uneven chunks.
fn output_of(id: i64, rng: &mut Lcg) -> Vec<(Stream, Vec<u8>)> {
    let lines = id % 4; // a quarter print nothing
    let mut text = Vec::new();
    for n in 0..lines * 3 {
        if n % 2 == 0 {
            text.extend_from_slice(
                format!("src{id}.c:{n}:1: \x1b[01;35mwarning:\x1b[m line {n} of {id}\n").as_bytes(),
            );
        } else {
            text.extend_from_slice(format!("  {n} | context of {id}\n").as_bytes());
        }
    }
    let mut chunks = Vec::new();
    let mut rest = &text[..];
    while !rest.is_empty() {
        let cut = (1 + rng.next(40) as usize).min(rest.len());
        let stream = if rng.next(2) == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        chunks.push((stream, rest[..cut].to_vec()));
        rest = &rest[cut..];
    }
    chunks
}

/// What a noisy build printed on stdout and on stderr, and what each command (by id)
/// printed, in the order the commands finished.
type Printed = (Vec<u8>, Vec<u8>, Vec<(i64, Vec<u8>)>);

fn run_noisy_build(mode: Mode) -> Printed {
    let (out, err) = (Shared::default(), Shared::default());
    let mut printer =
        Printer::with_writers(mode, Some(60), Box::new(out.clone()), Box::new(err.clone()));
    let mut rng = Lcg(4);
    let mut running: Vec<i64> = Vec::new();
    let mut next = 1;
    let mut expected = Vec::new();
    let make_noise: &[u8] = b"make[1]: Entering directory '/top/sub'\nmake[1]: Nothing to be done for 'x'.\nmake[1]: Leaving directory '/top/sub'\n";
    let mut noise_at = 0;
    while next <= 60 || !running.is_empty() {
        // Start up to 8 jobs, finish one at random, and let make say something in between.
        if next <= 60 && (running.len() < 8 && rng.next(3) != 0 || running.is_empty()) {
            let i = info(next);
            printer.started(&i, &default_label(&i));
            running.push(next);
            next += 1;
        } else {
            let id = running.remove(rng.next(running.len() as u64) as usize);
            let i = info(id);
            let chunks = output_of(id, &mut rng);
            let failed = id == 17;
            let outcome = Outcome {
                exit_code: Some(if failed { 1 } else { 0 }),
                signal: None,
                duration_ns: 1000,
            };
            printer.finished(&i, &default_label(&i), &chunks, &outcome);
            expected.push((id, chunks.iter().flat_map(|(_, b)| b.clone()).collect()));
        }
        let cut = (noise_at + rng.next(30) as usize).min(make_noise.len());
        printer.make_output(Stream::Stdout, &make_noise[noise_at..cut]);
        noise_at = if cut == make_noise.len() { 0 } else { cut };
    }
    printer.make_output(
        Stream::Stderr,
        b"make[1]: *** [Makefile:12: /top/sub/obj17.o] Error 1\n",
    );
    printer.finish(&Summary {
        commands: 60,
        failed: 1,
        elapsed: Duration::from_secs(3),
        exit_code: Some(2),
        ..Summary::default()
    });
    (out.bytes(), err.bytes(), expected)
}

fn strip(bytes: &[u8]) -> Vec<u8> {
    // The test's own escape stripping: the colored parts are exactly `\x1b[01;35m` and `\x1b[m`.
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .replace("\x1b[01;35m", "")
        .replace("\x1b[m", "")
        .into_bytes()
}

#[test]
fn each_commands_output_is_contiguous_under_its_label() {
    let (out, _, expected) = run_noisy_build(Mode::Concise);
    let text = String::from_utf8(out).unwrap();
    for (id, output) in expected {
        let head = if id == 17 {
            "FAILED: sub/obj17.o   (sub/, make level 1, recipe at Makefile:12)\ngcc -c src17.c -o /top/sub/obj17.o\n"
                .to_string()
        } else {
            format!("  CC    sub/obj{id}.o\n")
        };
        let block = format!("{head}{}", String::from_utf8(strip(&output)).unwrap());
        assert!(
            text.contains(&block),
            "command {id}'s block is broken up:\n{block}\n--- in ---\n{text}"
        );
        assert_eq!(text.matches(&head).count(), 1, "command {id} printed once");
    }
    // make's own lines stay whole; its directory lines are dropped.
    assert_eq!(
        text.matches("make[1]: Nothing to be done for 'x'.\n")
            .count(),
        text.matches("Nothing").count(),
        "make's lines are whole"
    );
    assert!(text.contains("make[1]: Nothing to be done for 'x'.\n"));
    assert!(!text.contains("Entering directory"));
    assert!(!text.contains("Leaving directory"));
}

#[test]
fn non_terminal_output_has_no_escape_byte() {
    for mode in [Mode::Concise, Mode::Verbose, Mode::Quiet] {
        let (out, err, _) = run_noisy_build(mode);
        assert!(!out.contains(&0x1b), "{mode:?}: escape byte on stdout");
        assert!(!err.contains(&0x1b), "{mode:?}: escape byte on stderr");
        assert!(String::from_utf8_lossy(&out).contains("warning: line 0 of 1"));
        let err = String::from_utf8(err).unwrap();
        assert!(err.ends_with(
            "makescope: build failed (make exited 2) after 0:03; 1 command failed. `makescope show 17` has everything.\n"
        ));
        assert!(err.starts_with("make[1]: *** [Makefile:12: /top/sub/obj17.o] Error 1\n"));
    }
}

#[test]
fn quiet_prints_only_what_printed_or_failed() {
    let (out, _, expected) = run_noisy_build(Mode::Quiet);
    let text = String::from_utf8(out).unwrap();
    for (id, output) in expected {
        let listed = text.contains(&format!("  CC    sub/obj{id}.o\n"))
            || text.contains(&format!("FAILED: sub/obj{id}.o"));
        assert_eq!(listed, !output.is_empty() || id == 17, "command {id}");
    }
    assert!(
        !text.contains("Nothing to be done"),
        "quiet drops make's stdout"
    );
}
