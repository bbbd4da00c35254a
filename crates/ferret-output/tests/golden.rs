//! Output compared with what bpftrace prints. Fixture names refer to
//! bpftrace's `tests/runtime/` suite (`outputs/*.txt`, `outputs/*.json`,
//! and named tests in `call`, `json-output`, `other`).

use std::collections::BTreeMap;

use ferret_output::hist::{linear_index, log2_index};
use ferret_output::printf::{self, Piece};
use ferret_output::{MapDump, MapEntry, MapValue, Value, json, text};

fn s(x: &str) -> Value {
    Value::Str(x.as_bytes().to_vec())
}

fn pf(fmt: &str, args: &[Value]) -> String {
    let pieces = printf::parse(fmt.as_bytes()).expect("valid format");
    assert_eq!(printf::arg_count(&pieces), args.len(), "{fmt}");
    String::from_utf8(printf::format(&pieces, args)).expect("utf8")
}

fn dump(name: &str, entries: Vec<(Option<Value>, MapValue)>) -> MapDump {
    MapDump {
        name: name.to_string(),
        entries: entries
            .into_iter()
            .map(|(key, value)| MapEntry { key, value })
            .collect(),
    }
}

fn log2_hist(k: u8, values: &[i64]) -> MapValue {
    let mut buckets = BTreeMap::new();
    for &v in values {
        *buckets.entry(log2_index(v, k)).or_insert(0) += 1;
    }
    MapValue::Hist { k, buckets }
}

fn lin_hist(min: i64, max: i64, step: i64, values: &[i64]) -> MapValue {
    let mut buckets = BTreeMap::new();
    for &v in values {
        *buckets.entry(linear_index(v, min, max, step)).or_insert(0) += 1;
    }
    MapValue::Lhist {
        min,
        max,
        step,
        buckets,
    }
}

// ---------------------------------------------------------------- printf

#[test]
fn printf_runtime_fixtures() {
    // call: printf_argument_alignment
    assert_eq!(
        pf(
            "%dst: %sa; %dnd: %sb;; %drd: %sc;;; %dth: %sd;;;;\n",
            &[
                Value::Int(1),
                s("a"),
                Value::Int(2),
                s("ab"),
                Value::Int(3),
                s("abc"),
                Value::Int(4),
                s("abcd")
            ]
        ),
        "1st: aa; 2nd: abb;; 3rd: abcc;;; 4th: abcdd;;;;\n"
    );
    // call: printf_length_modifiers
    let x = Value::Int(0x12345678abcdef);
    assert_eq!(
        pf("%hhx %hx %x %jx\n", &[x.clone(), x.clone(), x.clone(), x]),
        "ef cdef 78abcdef 12345678abcdef\n"
    );
    // call: printf_char
    let abcd: Vec<Value> = (0x41..=0x44).map(Value::Int).collect();
    assert_eq!(pf("%c%c%c%c\n", &abcd), "ABCD\n");
    // call: printf_enum_symbolize, printf_enum_symbolize_width
    let e = |n: &str, v| Value::Symbolic {
        name: n.to_string(),
        value: v,
    };
    assert_eq!(
        pf(
            "%d %s %d %s\n",
            &[
                e("ONE", 1),
                e("ONE", 1),
                e("OTHER", 99999),
                e("OTHER", 99999)
            ]
        ),
        "1 ONE 99999 OTHER\n"
    );
    assert_eq!(
        pf("%-5s %5s %s\n", &[e("A", 0), e("B", 1), e("C", 2)]),
        "A         B C\n"
    );
    // call: printf_lead_zeros
    assert_eq!(pf("%5s %04x", &[s("ba"), Value::Int(2)]), "   ba 0002");
    // call: printf_gfp_flags
    assert_eq!(
        pf("GFPFlags: %gr\n", &[Value::Int(1)]),
        "GFPFlags: GFP_DMA\n"
    );
    // call: buf_no_ascii, buf_no_ascii_no_escaping
    let buf = Value::Buffer(b"Hello\0".to_vec());
    assert_eq!(
        pf("%rx", std::slice::from_ref(&buf)),
        "\\x48\\x65\\x6c\\x6c\\x6f\\x00"
    );
    assert_eq!(pf("%rh", std::slice::from_ref(&buf)), "48 65 6c 6c 6f 00");
    assert_eq!(pf("%r", &[buf]), "Hello\\x00");
    // call: printf value: %dms100
    assert_eq!(
        pf("value: %dms100\n", &[Value::Int(100)]),
        "value: 100ms100\n"
    );
}

/// Expected strings checked against libstdc++ streams configured the way
/// bpftrace's FormatSpec::apply configures them.
#[test]
fn printf_integer_conversions() {
    let i = Value::Int;
    assert_eq!(pf("%05d", &[i(-42)]), "00-42");
    assert_eq!(pf("%-05d|", &[i(42)]), "42000|");
    assert_eq!(pf("%+d", &[i(5)]), "+5");
    assert_eq!(pf("%+6d", &[i(-5)]), "    -5");
    assert_eq!(pf("%+05d", &[i(42)]), "00+42");
    assert_eq!(pf("%-+5d|", &[i(42)]), "+42  |");
    assert_eq!(pf("% d", &[i(5)]), "5");
    assert_eq!(pf("%i", &[i(-7)]), "-7");
    assert_eq!(pf("%+u", &[i(5)]), "5");
    assert_eq!(pf("%+x", &[i(5)]), "5");
    assert_eq!(pf("%x", &[i(-1)]), "ffffffff");
    assert_eq!(pf("%lx", &[i(-1)]), "ffffffffffffffff");
    assert_eq!(pf("%llx", &[i(-1)]), "ffffffffffffffff");
    assert_eq!(
        pf("%zx %tx", &[i(-1), i(-1)]),
        "ffffffffffffffff ffffffffffffffff"
    );
    assert_eq!(pf("%u", &[i(-1)]), "4294967295");
    assert_eq!(pf("%lu", &[i(-1)]), "18446744073709551615");
    assert_eq!(pf("%o", &[i(-1)]), "37777777777");
    assert_eq!(pf("%#x", &[i(255)]), "0xff");
    assert_eq!(pf("%#X", &[i(255)]), "0XFF");
    assert_eq!(pf("%X", &[i(0xabc)]), "ABC");
    assert_eq!(pf("%#x", &[i(0)]), "0");
    assert_eq!(pf("%#o", &[i(8)]), "010");
    assert_eq!(pf("%#o", &[i(0)]), "0");
    assert_eq!(pf("%#08x", &[i(255)]), "00000xff");
    assert_eq!(pf("%hhd", &[i(300)]), "44");
    assert_eq!(pf("%hhd", &[i(200)]), "-56");
    assert_eq!(pf("%hhu", &[i(300)]), "44");
    assert_eq!(pf("%hd", &[i(40000)]), "-25536");
    assert_eq!(pf("%hu", &[i(-1)]), "65535");
    assert_eq!(pf("%d", &[i(3_000_000_000)]), "-1294967296");
    assert_eq!(pf("%ld", &[i(3_000_000_000)]), "3000000000");
    assert_eq!(pf("%jd", &[i(i64::MIN)]), "-9223372036854775808");
    assert_eq!(pf("%lld", &[Value::UInt(u64::MAX)]), "-1");
    assert_eq!(pf("%llu", &[Value::UInt(u64::MAX)]), "18446744073709551615");
    // Unknown length spellings count as none.
    assert_eq!(pf("%Lx", &[i(-1)]), "ffffffff");
    assert_eq!(pf("%hlx", &[i(-1)]), "ffffffff");
    // Precision is ignored.
    assert_eq!(pf("%.5d", &[i(42)]), "42");
    assert_eq!(pf("%8.3d|", &[i(42)]), "      42|");
    // `*` consumes no argument.
    assert_eq!(pf("%*d", &[i(42)]), "42");
    assert_eq!(pf("%d", &[Value::Bool(true)]), "1");
}

#[test]
fn printf_char_pointer_string() {
    let i = Value::Int;
    assert_eq!(pf("%3c|", &[i(65)]), "  A|");
    assert_eq!(pf("%-3c|", &[i(65)]), "A  |");
    assert_eq!(pf("%c", &[i(0x141)]), "A");
    assert_eq!(pf("%p", &[i(0x1234)]), "0x1234");
    assert_eq!(pf("%p", &[i(0)]), "0");
    assert_eq!(pf("%010p", &[i(0x1234)]), "00000x1234");
    assert_eq!(pf("%-10p|", &[i(0xab)]), "0xab      |");
    assert_eq!(
        pf("%p", &[Value::pointer(0xffff_8000_0000_0000)]),
        "0xffff800000000000"
    );
    assert_eq!(pf("%s", &[Value::pointer(0x36)]), "0x36");
    assert_eq!(pf("%5s|%-5s|", &[s("ab"), s("ab")]), "   ab|ab   |");
    assert_eq!(pf("%05s", &[s("ab")]), "000ab");
    assert_eq!(pf("%.3s", &[s("abcdef")]), "abcdef");
    assert_eq!(pf("%s", &[Value::Int(-3)]), "-3");
    assert_eq!(pf("%+s", &[Value::Int(7)]), "+7");
    assert_eq!(pf("%04s", &[Value::Int(7)]), "0007");
    assert_eq!(
        pf("%s %s", &[Value::Bool(true), Value::Bool(false)]),
        "true false"
    );
    // The width applies to the first piece of a composite value only.
    let t = Value::Tuple(vec![Value::Int(1), s("abc"), Value::Int(2)]);
    assert_eq!(pf("%s", std::slice::from_ref(&t)), "(1, abc, 2)");
    assert_eq!(pf("%4s", &[t]), "   (1, abc, 2)");
    let t = Value::Tuple(vec![Value::Int(1), Value::Int(-2)]);
    assert_eq!(pf("%+s", &[t]), "(+1, -2)");
    assert_eq!(
        pf(
            "%s",
            &[Value::Stack(vec![
                "        f+1".into(),
                "        g+2".into()
            ])]
        ),
        "\n        f+1\n        g+2\n"
    );
    // A non-number under an integer conversion.
    assert_eq!(pf("%d", &[s("x")]), "!{invalid integer conversion: x}");
}

#[test]
fn printf_parsing() {
    // `%%` in any spelling prints `%`; other stray `%` stay as text.
    assert_eq!(pf("100%% %5%", &[]), "100% %");
    assert_eq!(pf("%q %", &[]), "%q %");
    assert_eq!(pf("%0-5d", &[]), "%0-5d");
    assert_eq!(pf("%l", &[]), "%l");
    let pieces = printf::parse(b"a%-08.3llxb").expect("valid");
    assert_eq!(pieces.len(), 3);
    let Piece::Conversion(c) = &pieces[1] else {
        panic!("expected conversion")
    };
    assert!(c.flags.left && c.flags.zero && !c.flags.plus);
    assert_eq!((c.offset, c.width, c.precision), (1, Some(8), Some(3)));
    assert_eq!(c.length, printf::Length::Ll);
    assert_eq!(c.spec, printf::Spec::Hex);
    for (fmt, spec, off) in [
        ("x %f", "f", 2),
        ("%e", "e", 0),
        ("ab%5g", "g", 2),
        ("%n", "n", 0),
    ] {
        let err = printf::parse(fmt.as_bytes()).expect_err(fmt);
        assert_eq!(err.message, format!("unsupported format specifier: {spec}"));
        assert_eq!(err.offset, off);
    }
    // Huge widths are capped, not honoured.
    let out = pf("%99999999999999999999d", &[Value::Int(1)]);
    assert_eq!(out.len(), ferret_output::MAX_WIDTH);
    // Too few arguments: output stops before the text ahead of the first
    // unfilled conversion; only the trailing text follows.
    let pieces = printf::parse(b"a%db%dc").expect("valid");
    assert_eq!(printf::format(&pieces, &[Value::Int(1)]), b"a1c");
}

// ---------------------------------------------------------------- values

#[test]
fn values() {
    use text::format_value;
    assert_eq!(format_value(&Value::Int(-5)), "-5");
    assert_eq!(format_value(&Value::UInt(u64::MAX)), "18446744073709551615");
    assert_eq!(format_value(&s("abc")), "abc");
    assert_eq!(format_value(&Value::Bool(true)), "true");
    assert_eq!(
        format_value(&Value::Tuple(vec![Value::Int(1), s("abc"), Value::Int(2)])),
        "(1, abc, 2)"
    );
    assert_eq!(
        format_value(&Value::Array(vec![
            Value::Int(1),
            Value::Int(2),
            Value::Int(3)
        ])),
        "[1,2,3]"
    );
    // call: print_empty_scalar_record_map
    let rec = Value::Record(vec![
        ("a".into(), Value::Int(1)),
        ("b".into(), Value::Tuple(vec![Value::Int(2), s("hi")])),
    ]);
    assert_eq!(format_value(&rec), "{ .a = 1, .b = (2, hi) }");
    let rec0 = Value::Record(vec![
        ("a".into(), Value::Int(0)),
        ("b".into(), Value::Tuple(vec![Value::Int(0), s("")])),
    ]);
    assert_eq!(format_value(&rec0), "{ .a = 0, .b = (0, ) }");
    assert_eq!(format_value(&Value::Record(vec![])), "{}");
    assert_eq!(format_value(&Value::pointer(0x36)), "0x36");
    // call: buf_map_value
    assert_eq!(
        format_value(&Value::Buffer(b"ok_value".to_vec())),
        "ok_value"
    );
    assert_eq!(
        format_value(&Value::Buffer(vec![0x41, 0x0a, 0xff])),
        "A\\x0a\\xff"
    );
    assert_eq!(
        format_value(&Value::Stack(vec!["        a+1".into()])),
        "\n        a+1\n"
    );
}

// ---------------------------------------------------------------- maps

#[test]
fn hist_fixture() {
    // outputs/hist.txt: hist(-1), hist(2), hist(3), hist(7), hist(20)
    let m = dump("@", vec![(None, log2_hist(0, &[-1, 2, 3, 7, 20]))]);
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@:
(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[0]                    0 |                                                    |
[1]                    0 |                                                    |
[2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[4, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[8, 16)                0 |                                                    |
[16, 32)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |

"
    );
    // outputs/hist_2_values.txt: hist(2), hist(20)
    let m = dump("@", vec![(None, log2_hist(0, &[2, 20]))]);
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@:
[2, 4)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[4, 8)                 0 |                                                    |
[8, 16)                0 |                                                    |
[16, 32)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|

"
    );
}

#[test]
fn lhist_fixture() {
    // outputs/lhist.txt: lhist(2|3|7|-1|11, 0, 10, 2)
    let m = dump("@", vec![(None, lin_hist(0, 10, 2, &[2, 3, 7, -1, 11]))]);
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@:
(..., 0)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[0, 2)                 0 |                                                    |
[2, 4)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[4, 6)                 0 |                                                    |
[6, 8)                 1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[8, 10)                0 |                                                    |
[10, ...)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |

"
    );
}

#[test]
fn hist_shapes() {
    // k > 0, keyed, huge values, bar rounding (1/3 of 52 in f32 = 17).
    let m = dump(
        "@h",
        vec![(
            Some(s("k")),
            log2_hist(1, &[4, 5, 6, 6, 6, 7, 1 << 20, 1 << 20, 1 << 20, 1 << 20]),
        )],
    );
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@h[k]:
[4, 6)                 2 |@@@@@@@@@@@@@@@@@@@@@@@@@@                          |
[6, 8)                 4 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
"
        .to_string()
            + &(7..41)
                .map(|i| {
                    let label = ferret_output::hist::log2_bucket_label(i, 1);
                    format!("{label:<16}       0 |{:52}|\n", "")
                })
                .collect::<String>()
            + "[1024K, 1536K)         4 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|\n\n"
    );
    let big = dump(
        "@",
        vec![(None, log2_hist(0, &[i64::MAX, 1 << 40, 1 << 40, 1 << 40]))],
    );
    let out = text::format_map(&big, 0, 1);
    assert!(
        out.starts_with("@:\n[1T, 2T)               3 |@@@@"),
        "{out}"
    );
    assert!(out.contains("\n[1P, 2P)               0 |"), "{out}");
    assert!(
        out.ends_with(
            "[4E, 8E)               1 |@@@@@@@@@@@@@@@@@                                   |\n\n"
        ),
        "{out}"
    );
    // lhist with K suffixes (step a multiple of 1024).
    let m = dump("@", vec![(None, lin_hist(0, 4096, 1024, &[0, 1500, 5000]))]);
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@:
[0, 1K)                1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[1K, 2K)               1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|
[2K, 3K)               0 |                                                    |
[3K, 4K)               0 |                                                    |
[4K, ...)              1 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|

"
    );
    // An entry whose buckets are all zero (after zero()) keeps its header.
    let z = dump(
        "@h",
        vec![(
            None,
            MapValue::Hist {
                k: 0,
                buckets: BTreeMap::from([(3, 0)]),
            },
        )],
    );
    assert_eq!(text::format_map(&z, 0, 1), "@h:\n\n");
}

#[test]
fn keyed_hists_sorted_by_total_with_top() {
    // call: print_hist_with_top_arg — @[1]=hist(10); @[2]=hist(20); @[3]=hist(30); print(@, 2)
    let m = dump(
        "@",
        vec![
            (Some(Value::Int(3)), log2_hist(0, &[30, 30, 30])),
            (Some(Value::Int(1)), log2_hist(0, &[10])),
            (Some(Value::Int(2)), log2_hist(0, &[20, 20])),
        ],
    );
    let bar = "@".repeat(52);
    assert_eq!(
        text::format_map(&m, 2, 1),
        format!(
            "@[2]:\n[16, 32)               2 |{bar}|\n\n@[3]:\n[16, 32)               3 |{bar}|\n\n"
        )
    );
    // div divides hist counts.
    assert_eq!(
        text::format_map(&m, 1, 3),
        format!("@[3]:\n[16, 32)               1 |{bar}|\n\n")
    );
}

#[test]
fn scalar_maps() {
    let one = |v| dump("@x", vec![(None, v)]);
    assert_eq!(text::format_map(&one(MapValue::Count(5)), 0, 1), "@x: 5\n");
    assert_eq!(
        text::format_map(&one(MapValue::Sum(Value::Int(-5))), 0, 1),
        "@x: -5\n"
    );
    assert_eq!(text::format_map(&one(MapValue::Min(-3)), 0, 1), "@x: -3\n");
    assert_eq!(text::format_map(&one(MapValue::Max(9)), 0, 1), "@x: 9\n");
    // call: avg — avg(1), avg(2), avg(3)
    assert_eq!(
        text::format_map(
            &dump("@avg", vec![(None, MapValue::Avg { total: 6, count: 3 })]),
            0,
            1
        ),
        "@avg: 2\n"
    );
    // Integer mean truncates toward zero: -7 / 2 = -3.
    assert_eq!(
        text::format_map(
            &one(MapValue::Avg {
                total: -7,
                count: 2
            }),
            0,
            1
        ),
        "@x: -3\n"
    );
    // call: stats — stats(1), stats(2), stats(3)
    assert_eq!(
        text::format_map(
            &dump(
                "@stats",
                vec![(None, MapValue::Stats { total: 6, count: 3 })]
            ),
            0,
            1
        ),
        "@stats: { .count = 3, .average = 2, .total = 6 }\n"
    );
    assert_eq!(
        text::format_map(
            &one(MapValue::Stats {
                total: -7,
                count: 2
            }),
            0,
            1
        ),
        "@x: { .count = 2, .average = -3, .total = -7 }\n"
    );
    // call: print_empty_scalar_stats_map (the runtime passes the zero value)
    assert_eq!(
        text::format_map(
            &dump("@", vec![(None, MapValue::Stats { total: 0, count: 0 })]),
            0,
            1
        ),
        "@: { .count = 0, .average = 0, .total = 0 }\n"
    );
    // call: print_empty_scalar_map, print_non_map (config test): `@x: xxxx`
    assert_eq!(
        text::format_map(&one(MapValue::Plain(s("xxxx"))), 0, 1),
        "@x: xxxx\n"
    );
    assert_eq!(
        text::format_map(&one(MapValue::Plain(Value::Int(0))), 0, 1),
        "@x: 0\n"
    );
    assert_eq!(text::format_map(&one(MapValue::Count(10)), 0, 3), "@x: 3\n");
    assert_eq!(
        text::format_map(&one(MapValue::Sum(Value::Int(-10))), 0, 3),
        "@x: -3\n"
    );
}

#[test]
fn empty_maps_print_nothing() {
    let m = dump("@x", vec![]);
    assert_eq!(text::format_map(&m, 0, 1), "");
    assert_eq!(text::format_map_at_exit(&m), "");
    assert_eq!(json::map(&m, 0, 1), "");
}

#[test]
fn keys() {
    // call: print_map_after_delete: `@x[2, 1]: 2`
    let m = dump(
        "@x",
        vec![(
            Some(Value::Tuple(vec![Value::Int(2), Value::Int(1)])),
            MapValue::Plain(Value::Int(2)),
        )],
    );
    assert_eq!(text::format_map(&m, 0, 1), "@x[2, 1]: 2\n");
    // Nested tuples keep their inner parentheses.
    let m = dump(
        "@",
        vec![(
            Some(Value::Tuple(vec![
                s("hi"),
                Value::Tuple(vec![s("x"), Value::Int(2)]),
            ])),
            MapValue::Count(1),
        )],
    );
    assert_eq!(text::format_map(&m, 0, 1), "@[hi, (x, 2)]: 1\n");
    // other: per_cpu_map_as_map_key
    let m = dump(
        "@",
        vec![(
            Some(Value::Tuple([1, 5, 1, 10, 7].map(Value::Int).to_vec())),
            MapValue::Plain(Value::Int(1)),
        )],
    );
    assert_eq!(text::format_map(&m, 0, 1), "@[1, 5, 1, 10, 7]: 1\n");
    // Stack keys.
    let m = dump(
        "@",
        vec![(
            Some(Value::Stack(vec![
                "        do_sys_openat2+123".into(),
                "        __x64_sys_openat+85".into(),
            ])),
            MapValue::Count(12),
        )],
    );
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@[\n        do_sys_openat2+123\n        __x64_sys_openat+85\n]: 12\n"
    );
    // enum keys are printed by name
    let m = dump(
        "@",
        vec![(
            Some(Value::Symbolic {
                name: "ONE".into(),
                value: 1,
            }),
            MapValue::Count(11),
        )],
    );
    assert_eq!(text::format_map(&m, 0, 1), "@[ONE]: 11\n");
}

#[test]
fn sort_orders() {
    // Counts ascending by value; ties keep read order.
    let m = dump(
        "@",
        vec![
            (Some(s("c")), MapValue::Count(3)),
            (Some(s("a")), MapValue::Count(10)),
            (Some(s("b")), MapValue::Count(1)),
            (Some(s("d")), MapValue::Count(3)),
        ],
    );
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@[b]: 1\n@[c]: 3\n@[d]: 3\n@[a]: 10\n"
    );
    assert_eq!(text::format_map(&m, 2, 1), "@[d]: 3\n@[a]: 10\n");
    assert_eq!(text::format_map(&m, 10, 1), text::format_map(&m, 0, 1));
    // Signed sums sort numerically.
    let m = dump(
        "@",
        vec![
            (Some(Value::Int(1)), MapValue::Sum(Value::Int(5))),
            (Some(Value::Int(2)), MapValue::Sum(Value::Int(-5))),
        ],
    );
    assert_eq!(text::format_map(&m, 0, 1), "@[2]: -5\n@[1]: 5\n");
    // min/max compare as unsigned: negatives last.
    let m = dump(
        "@",
        vec![
            (Some(Value::Int(1)), MapValue::Min(-1)),
            (Some(Value::Int(2)), MapValue::Min(7)),
        ],
    );
    assert_eq!(text::format_map(&m, 0, 1), "@[2]: 7\n@[1]: -1\n");
    // call: print_avg_map_args — avg(10..40) over a..d, print(@, 2, 10)
    let m = dump(
        "@",
        ["d", "b", "a", "c"]
            .iter()
            .map(|k| {
                let total = match *k {
                    "a" => 10,
                    "b" => 20,
                    "c" => 30,
                    _ => 40,
                };
                (Some(s(k)), MapValue::Avg { total, count: 1 })
            })
            .collect(),
    );
    assert_eq!(text::format_map(&m, 2, 10), "@[c]: 3\n@[d]: 4\n");
    // call: print_avg_map_with_large_top
    assert_eq!(
        text::format_map(&m, 10, 10),
        "@[a]: 1\n@[b]: 2\n@[c]: 3\n@[d]: 4\n"
    );
    // Non-integer values sort by key: ints numerically, strings bytewise,
    // tuples field by field.
    let m = dump(
        "@",
        vec![
            (Some(Value::Int(10)), MapValue::Plain(s("x"))),
            (Some(Value::Int(-2)), MapValue::Plain(s("y"))),
            (Some(Value::Int(3)), MapValue::Plain(s("z"))),
        ],
    );
    assert_eq!(text::format_map(&m, 0, 1), "@[-2]: y\n@[3]: z\n@[10]: x\n");
    let t = |a: &str, b| Some(Value::Tuple(vec![s(a), Value::Int(b)]));
    let m = dump(
        "@",
        vec![
            (t("b", 1), MapValue::Plain(s("1"))),
            (t("a", 2), MapValue::Plain(s("2"))),
            (t("ab", 0), MapValue::Plain(s("3"))),
            (t("a", 1), MapValue::Plain(s("4"))),
        ],
    );
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@[a, 1]: 4\n@[a, 2]: 2\n@[ab, 0]: 3\n@[b, 1]: 1\n"
    );
}

#[test]
fn maps_at_exit_by_name() {
    let maps = [
        dump("@b", vec![(None, MapValue::Count(2))]),
        dump("@", vec![(None, MapValue::Count(1))]),
        dump("@a", vec![]),
    ];
    assert_eq!(text::format_maps_at_exit(&maps), b"@: 1\n@b: 2\n");
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_events() {
    assert_eq!(
        json::attached_probes(1),
        "{\"type\": \"attached_probes\", \"count\": 1, \"data\": {\"probes\": 1}}\n"
    );
    assert_eq!(
        json::lost_events(7),
        "{\"type\": \"lost_events\", \"count\": 7, \"data\": {\"events\": 7}}\n"
    );
    // json-output: printf
    assert_eq!(
        json::printf(b"test 5"),
        "{\"type\": \"printf\", \"data\": \"test 5\"}\n"
    );
    assert_eq!(
        json::printf(b"a\"b\\c\n\r\t\x01\x1f\xc3\xa9"),
        "{\"type\": \"printf\", \"data\": \"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001f\\uffffffc3\\uffffffa9\"}\n"
    );
    assert_eq!(
        json::text_event("join", b"a b"),
        "{\"type\": \"join\", \"data\": \"a b\"}\n"
    );
    // json-output: print_non_map_value-like tuple
    assert_eq!(
        json::value(&Value::Tuple(vec![
            Value::Int(1),
            Value::Int(2),
            s("string")
        ])),
        "{\"type\": \"value\", \"data\": [1,2,\"string\"]}\n"
    );
    assert_eq!(
        json::value(&Value::Record(vec![
            ("a".into(), Value::Int(1)),
            ("b".into(), s("x"))
        ])),
        "{\"type\": \"value\", \"data\": {\"a\": 1, \"b\": \"x\"}}\n"
    );
    assert_eq!(
        json::value(&Value::UInt(u64::MAX)),
        "{\"type\": \"value\", \"data\": \"18446744073709551615\"}\n"
    );
    assert_eq!(
        json::value(&Value::Int(1 << 53)),
        "{\"type\": \"value\", \"data\": 9007199254740992}\n"
    );
    assert_eq!(
        json::value(&Value::Int((1 << 53) + 1)),
        "{\"type\": \"value\", \"data\": \"9007199254740993\"}\n"
    );
    assert_eq!(
        json::value(&Value::Int(i64::MAX)),
        "{\"type\": \"value\", \"data\": \"9223372036854775807\"}\n"
    );
    assert_eq!(
        json::value(&Value::Int(i64::MIN)),
        "{\"type\": \"value\", \"data\": -9223372036854775808}\n"
    );
    assert_eq!(
        json::value(&Value::Bool(false)),
        "{\"type\": \"value\", \"data\": false}\n"
    );
    assert_eq!(
        json::value(&Value::pointer(0x36)),
        "{\"type\": \"value\", \"data\": 54}\n"
    );
    assert_eq!(
        json::value(&Value::Buffer(vec![0x48, 0xff])),
        "{\"type\": \"value\", \"data\": [72,-1]}\n"
    );
    assert_eq!(
        json::value(&Value::None),
        "{\"type\": \"value\", \"data\": null}\n"
    );
}

#[test]
fn json_maps() {
    // outputs/scalar.json, scalar_str.json, map.json, complex.json
    assert_eq!(
        json::map(
            &dump("@scalar", vec![(None, MapValue::Plain(Value::Int(5)))]),
            0,
            1
        ),
        "{\"type\": \"map\", \"data\": {\"@scalar\": 5}}\n"
    );
    assert_eq!(
        json::map(
            &dump(
                "@scalar_str",
                vec![(None, MapValue::Plain(s("a b \n d e")))]
            ),
            0,
            1
        ),
        "{\"type\": \"map\", \"data\": {\"@scalar_str\": \"a b \\n d e\"}}\n"
    );
    let m = dump(
        "@map",
        vec![
            (Some(s("key2")), MapValue::Plain(Value::Int(3))),
            (Some(s("key1")), MapValue::Plain(Value::Int(2))),
        ],
    );
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@map\": {\"key1\": 2, \"key2\": 3}}}\n"
    );
    let m = dump(
        "@complex",
        vec![(
            Some(Value::Tuple(vec![s("bpftrace"), Value::Int(2)])),
            MapValue::Count(5),
        )],
    );
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@complex\": {\"bpftrace,2\": 5}}}\n"
    );
    // Spaces inside string keys are removed too.
    let m = dump("@", vec![(Some(s("a b")), MapValue::Count(1))]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@\": {\"ab\": 1}}}\n"
    );
    // outputs/stats.json, stats_multiple.json
    assert_eq!(
        json::map(
            &dump(
                "@stats",
                vec![(
                    None,
                    MapValue::Stats {
                        total: 12,
                        count: 2
                    }
                )]
            ),
            0,
            1
        ),
        "{\"type\": \"stats\", \"data\": {\"@stats\": {\"count\": 2, \"average\": 6, \"total\": 12}}}\n"
    );
    let m = dump(
        "@stats",
        vec![
            (
                Some(s("zsh")),
                MapValue::Stats {
                    total: 10,
                    count: 1,
                },
            ),
            (Some(s("curl")), MapValue::Stats { total: 2, count: 1 }),
        ],
    );
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"stats\", \"data\": {\"@stats\": {\"curl\": {\"count\": 1, \"average\": 2, \"total\": 2}, \"zsh\": {\"count\": 1, \"average\": 10, \"total\": 10}}}}\n"
    );
    // json-output: print_avg_map_args
    let m = dump(
        "@",
        [("a", 10), ("b", 20), ("c", 30), ("d", 40)]
            .iter()
            .map(|(k, t)| {
                (
                    Some(s(k)),
                    MapValue::Avg {
                        total: *t,
                        count: 1,
                    },
                )
            })
            .collect(),
    );
    assert_eq!(
        json::map(&m, 2, 10),
        "{\"type\": \"stats\", \"data\": {\"@\": {\"c\": 3, \"d\": 4}}}\n"
    );
}

/// Every NDJSON object kind bpftrace's `JsonOutput` emits (src/output/
/// json.cpp), one line each.
#[test]
fn json_every_object_kind() {
    // Plain-text events keep their text, newline included, as a string.
    for kind in ["time", "cat", "join", "syscall"] {
        assert_eq!(
            json::text_event(kind, b"12:00:01 x\n"),
            format!("{{\"type\": \"{kind}\", \"data\": \"12:00:01 x\\n\"}}\n")
        );
    }
    // Counts, sums, mins and maxes are plain maps, sorted by value.
    let m = dump(
        "@c",
        vec![
            (Some(s("b")), MapValue::Count(3)),
            (Some(s("a")), MapValue::Count(5)),
        ],
    );
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@c\": {\"b\": 3, \"a\": 5}}}\n"
    );
    let m = dump("@s", vec![(None, MapValue::Sum(Value::Int(-7)))]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@s\": -7}}\n"
    );
    let m = dump("@mn", vec![(Some(Value::Int(1)), MapValue::Min(-2))]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@mn\": {\"1\": -2}}}\n"
    );
    let m = dump("@mx", vec![(Some(Value::Bool(true)), MapValue::Max(9))]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@mx\": {\"true\": 9}}}\n"
    );
    // A scalar avg is a "stats" object holding just the average.
    let m = dump("@a", vec![(None, MapValue::Avg { total: 7, count: 2 })]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"stats\", \"data\": {\"@a\": 3}}\n"
    );
    // Tuples as values are arrays; nested tuple keys keep their inner
    // parentheses, lose every space.
    let m = dump(
        "@t",
        vec![(
            Some(Value::Tuple(vec![
                Value::Int(1),
                Value::Tuple(vec![Value::Int(2), s("a b")]),
            ])),
            MapValue::Plain(Value::Tuple(vec![Value::Int(2), s("x")])),
        )],
    );
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@t\": {\"1,(2,ab)\": [2,\"x\"]}}}\n"
    );
    // Any key text in parentheses loses them (bpftrace strips by text).
    let m = dump("@p", vec![(Some(s("(x)")), MapValue::Count(1))]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@p\": {\"x\": 1}}}\n"
    );
    // A stack as a key: its text without spaces. As a value: as printed.
    let stack = Value::Stack(vec!["        f+1".into(), "        g+2".into()]);
    let m = dump("@k", vec![(Some(stack.clone()), MapValue::Count(4))]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@k\": {\"\\nf+1\\ng+2\\n\": 4}}}\n"
    );
    let m = dump("@v", vec![(None, MapValue::Plain(stack.clone()))]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"map\", \"data\": {\"@v\": \"\\n        f+1\\n        g+2\\n\"}}\n"
    );
    assert_eq!(
        json::value(&stack),
        "{\"type\": \"value\", \"data\": \"\\n        f+1\\n        g+2\\n\"}\n"
    );
    // Symbols are strings; arrays and nested tuples nest unspaced.
    assert_eq!(
        json::value(&Value::Tuple(vec![
            Value::Sym("do_sys_openat2".into()),
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
            Value::Tuple(vec![Value::Int(3), s("y")]),
        ])),
        "{\"type\": \"value\", \"data\": [\"do_sys_openat2\",[1,2],[3,\"y\"]]}\n"
    );
    // A keyed lhist: one bucket list per key; the first bucket's "min" is
    // its lower bound.
    let m = dump(
        "@l",
        vec![(Some(s("a")), lin_hist(0, 100, 10, &[5, 15, 15]))],
    );
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"hist\", \"data\": {\"@l\": {\"a\": [{\"min\": 0, \"max\": 9, \"count\": 1},{\"min\": 10, \"max\": 19, \"count\": 2}]}}}\n"
    );
    // A keyed log2 hist with a divisor: counts divided, as print(@h, 0, 2).
    let m = dump(
        "@h",
        vec![(Some(Value::Int(7)), log2_hist(0, &[4, 4, 4, 4]))],
    );
    assert_eq!(
        json::map(&m, 0, 2),
        "{\"type\": \"hist\", \"data\": {\"@h\": {\"7\": [{\"min\": 4, \"max\": 7, \"count\": 2}]}}}\n"
    );
    // A map with no entries prints nothing at all.
    assert_eq!(json::map(&dump("@e", vec![]), 0, 1), "");
    assert_eq!(
        json::lost_events(0),
        "{\"type\": \"lost_events\", \"count\": 0, \"data\": {\"events\": 0}}\n"
    );
}

#[test]
fn json_hists() {
    // outputs/hist.json: hist(2), hist(1024)
    let m = dump("@hist", vec![(None, log2_hist(0, &[2, 1024]))]);
    let mut expect = String::from(
        "{\"type\": \"hist\", \"data\": {\"@hist\": [{\"min\": 2, \"max\": 3, \"count\": 1}",
    );
    for p in 2..10 {
        expect += &format!(
            ",{{\"min\": {}, \"max\": {}, \"count\": 0}}",
            1 << p,
            (1 << (p + 1)) - 1
        );
    }
    expect += ",{\"min\": 1024, \"max\": 2047, \"count\": 1}]}}\n";
    assert_eq!(json::map(&m, 0, 1), expect);
    // outputs/hist_multiple.json (first bucket has only "max")
    let m = dump("@", vec![(Some(s("curl")), log2_hist(0, &[-1, 0, 256]))]);
    let out = json::map(&m, 0, 1);
    assert!(
        out.starts_with("{\"type\": \"hist\", \"data\": {\"@\": {\"curl\": [{\"max\": -1, \"count\": 1},{\"min\": 0, \"max\": 0, \"count\": 1},{\"min\": 1, \"max\": 1, \"count\": 0},"),
        "{out}"
    );
    // outputs/hist_10g.json
    let m = dump("@", vec![(None, log2_hist(0, &[10_000_000_000]))]);
    assert_eq!(
        json::map(&m, 0, 1),
        "{\"type\": \"hist\", \"data\": {\"@\": [{\"min\": 8589934592, \"max\": 17179869183, \"count\": 1}]}}\n"
    );
    // outputs/hist_2args.json starts: hist(n, 3) with n in 0..1024
    let m = dump(
        "@",
        vec![(None, log2_hist(3, &(0..1024).collect::<Vec<_>>()))],
    );
    let out = json::map(&m, 0, 1);
    assert!(
        out.starts_with(
            "{\"type\": \"hist\", \"data\": {\"@\": [{\"min\": 0, \"max\": 0, \"count\": 1},{"
        ),
        "{out}"
    );
    assert!(
        out.contains(",{\"min\": 16, \"max\": 17, \"count\": 2},"),
        "{out}"
    );
    assert!(
        out.ends_with(",{\"min\": 960, \"max\": 1023, \"count\": 64}]}}\n"),
        "{out}"
    );
    // outputs/hist_zero.json / lhist_zero.json
    let z = dump(
        "@hist",
        vec![(
            None,
            MapValue::Hist {
                k: 0,
                buckets: BTreeMap::from([(2, 0)]),
            },
        )],
    );
    assert_eq!(
        json::map(&z, 0, 1),
        "{\"type\": \"hist\", \"data\": {\"@hist\": []}}\n"
    );
    // outputs/lhist.json: lhist(0|50|1000, 0, 100, 10)
    let m = dump("@h", vec![(None, lin_hist(0, 100, 10, &[0, 50, 1000]))]);
    let mut expect = String::from("{\"type\": \"hist\", \"data\": {\"@h\": [");
    for b in 0..10 {
        let c = u32::from(b == 0 || b == 5);
        if b > 0 {
            expect.push(',');
        }
        expect += &format!(
            "{{\"min\": {}, \"max\": {}, \"count\": {c}}}",
            b * 10,
            b * 10 + 9
        );
    }
    expect += ",{\"min\": 100, \"count\": 1}]}}\n";
    assert_eq!(json::map(&m, 0, 1), expect);
}

#[test]
fn no_panics_on_odd_input() {
    let weird = [
        MapValue::Hist {
            k: 200,
            buckets: BTreeMap::from([(u64::MAX, u64::MAX), (0, 1)]),
        },
        MapValue::Lhist {
            min: i64::MIN,
            max: i64::MAX,
            step: 0,
            buckets: BTreeMap::from([(5000, 3), (1, 0)]),
        },
        MapValue::Lhist {
            min: i64::MAX,
            max: i64::MIN,
            step: -1,
            buckets: BTreeMap::from([(0, 1), (1001, 2)]),
        },
        MapValue::Avg {
            total: i64::MIN,
            count: u64::MAX,
        },
        MapValue::Stats {
            total: i64::MIN,
            count: 1,
        },
        MapValue::Min(i64::MIN),
    ];
    for v in weird {
        let m = dump("@", vec![(None, v)]);
        let _ = text::format_map(&m, 0, 0);
        let _ = text::format_map(&m, 0, u64::MAX);
        let _ = json::map(&m, 3, 7);
    }
    for fmt in [
        "%",
        "%-",
        "%5.",
        "%.*",
        "%hh",
        "%%%",
        "%rx%r",
        "%0000000000000000000000s",
    ] {
        let pieces = printf::parse(fmt.as_bytes()).expect(fmt);
        let _ = printf::format(&pieces, &[Value::Int(1), Value::None]);
    }
}

/// Values of bpftrace's library functions as `print()` and `%s` show them.
#[test]
fn library_function_values() {
    use ferret_output::special;
    assert_eq!(special::inet(2, &[192, 168, 0, 1]), "192.168.0.1");
    let v6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    assert_eq!(special::inet(10, &v6), "2001:db8::1");
    assert_eq!(
        special::mac(&[0x18, 0xc0, 0x4d, 0x08, 0x2e, 0x7b]),
        "18:C0:4D:08:2E:7B"
    );
    assert_eq!(special::strerror(13), "Permission denied");
    assert_eq!(special::strerror(11), "Try again (operation would block)");
    // Tuples: spaces after commas, nested parentheses, strings bare.
    let t = Value::Tuple(vec![
        Value::Int(1),
        s("a"),
        Value::Tuple(vec![Value::Int(2), Value::Int(3)]),
    ]);
    assert_eq!(text::format_print_value(&t), b"(1, a, (2, 3))\n");
    // Arrays: no spaces.
    let a = Value::Array(vec![Value::UInt(127), Value::UInt(0), Value::UInt(1)]);
    assert_eq!(text::format_print_value(&a), b"[127,0,1]\n");
    assert_eq!(text::format_print_value(&Value::Bool(true)), b"true\n");
    // A tuple-valued map, and a tuple key loses its outer parentheses.
    let d = dump(
        "@t",
        vec![(
            Some(Value::Tuple(vec![Value::Int(1), s("x")])),
            MapValue::Plain(t.clone()),
        )],
    );
    assert_eq!(text::format_map(&d, 0, 1), "@t[1, x]: (1, a, (2, 3))\n");
    assert_eq!(
        pf("%s|%d", &[Value::Bool(false), Value::Bool(true)]),
        "false|1"
    );
}

#[test]
fn json_errorf_and_runtime_errors() {
    assert_eq!(
        json::located("errorf", b"bad: 10", "stdin", 1, 9),
        "{\"type\": \"errorf\", \"msg\": \"bad: 10\", \"filename\": \"stdin\", \"line\": 1, \"col\": 9}\n"
    );
    assert_eq!(
        json::text_event("join", b"ls -l"),
        "{\"type\": \"join\", \"data\": \"ls -l\"}\n"
    );
}

#[test]
fn records_and_loop_values() {
    // record: record printing complex args: `@[{ .a = 1, ... }]: (bye, { ... })`
    let m = dump(
        "@",
        vec![(
            Some(Value::Record(vec![
                ("a".into(), Value::Int(1)),
                ("b".into(), s("hello")),
            ])),
            MapValue::Plain(Value::Tuple(vec![
                s("bye"),
                Value::Record(vec![("n".into(), Value::Int(10))]),
            ])),
        )],
    );
    assert_eq!(
        text::format_map(&m, 0, 1),
        "@[{ .a = 1, .b = hello }]: (bye, { .n = 10 })\n"
    );
    // for: map two keys: `print($kv)` of a two-key map's element.
    assert_eq!(
        text::format_value(&Value::Tuple(vec![
            Value::Tuple(vec![Value::Int(16), Value::Int(17)]),
            Value::Int(32),
        ])),
        "((16, 17), 32)"
    );
    // record: record printing, records nested in records.
    assert_eq!(
        text::format_value(&Value::Record(vec![
            ("d".into(), Value::Tuple(vec![Value::Int(5), Value::Int(6)])),
            (
                "e".into(),
                Value::Record(vec![
                    ("x".into(), Value::Int(1)),
                    ("y".into(), Value::Int(2))
                ])
            ),
        ])),
        "{ .d = (5, 6), .e = { .x = 1, .y = 2 } }"
    );
    assert_eq!(
        json::value(&Value::Tuple(vec![
            Value::Tuple(vec![Value::Int(16), s("a")]),
            Value::Int(32),
        ])),
        "{\"type\": \"value\", \"data\": [[16,\"a\"],32]}\n"
    );
}
