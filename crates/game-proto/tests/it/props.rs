//! Property tests of the pure decoders: arbitrary bytes never panic, and our encoders
//! round-trip.

use game_proto::a2s::{SplitAssembler, classify, parse_info, parse_players};
use game_proto::rcon::{decode_packet, encode_packet};
use game_proto::slp::{
    decode_status_frame, decode_varint, encode_varint, flatten_text_component, parse_status_json,
    strip_formatting,
};
use proptest::prelude::*;

proptest! {
    #[test]
    fn rcon_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(Some((_, used))) = decode_packet(&bytes) {
            prop_assert!(used <= bytes.len());
        }
    }

    #[test]
    fn rcon_decode_never_panics_on_plausible_headers(
        size in 0i32..40, id in any::<i32>(), kind in any::<i32>(),
        tail in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut bytes = size.to_le_bytes().to_vec();
        bytes.extend(id.to_le_bytes());
        bytes.extend(kind.to_le_bytes());
        bytes.extend(tail);
        let _ = decode_packet(&bytes);
    }

    #[test]
    fn rcon_round_trip(
        packets in proptest::collection::vec(
            (any::<i32>(), any::<i32>(), proptest::collection::vec(any::<u8>(), 0..600)),
            1..5,
        ),
    ) {
        let mut stream = Vec::new();
        for (id, kind, body) in &packets {
            stream.extend(encode_packet(*id, *kind, body).unwrap());
        }
        let mut rest = stream.as_slice();
        for (id, kind, body) in &packets {
            let (packet, used) = decode_packet(rest).unwrap().unwrap();
            prop_assert_eq!((packet.id, packet.kind, &packet.body), (*id, *kind, body));
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn varint_round_trip(value in any::<i32>()) {
        let mut bytes = Vec::new();
        encode_varint(value, &mut bytes);
        prop_assert!(bytes.len() <= 5);
        prop_assert_eq!(decode_varint(&bytes).unwrap(), Some((value, bytes.len())));
        // Every proper prefix asks for more bytes rather than failing or guessing.
        for cut in 0..bytes.len() {
            prop_assert_eq!(decode_varint(&bytes[..cut]).unwrap(), None);
        }
    }

    #[test]
    fn varint_and_status_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(Some((_, used))) = decode_varint(&bytes) {
            prop_assert!(used <= 5 && used <= bytes.len());
        }
        if let Ok(json) = decode_status_frame(&bytes) {
            let _ = parse_status_json(json);
        }
    }

    #[test]
    fn status_json_never_panics(text in ".{0,200}") {
        let _ = parse_status_json(&text);
        let _ = strip_formatting(&text);
        let _ = flatten_text_component(&serde_json::Value::String(text));
    }

    #[test]
    fn status_json_of_any_shape_never_panics(json in arbitrary_json()) {
        let doc = serde_json::json!({"description": json.clone(), "players": json.clone(), "version": json});
        let _ = parse_status_json(&doc.to_string());
    }

    #[test]
    fn a2s_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = classify(&bytes);
        let _ = parse_info(&bytes);
        let _ = parse_players(&bytes);
        let mut split = vec![0xfe, 0xff, 0xff, 0xff];
        split.extend(&bytes);
        let mut assembler = SplitAssembler::new();
        let _ = assembler.push(&split);
        let _ = assembler.push(&bytes);
    }

    #[test]
    fn a2s_split_pieces_in_any_order(
        payload in proptest::collection::vec(any::<u8>(), 1..400),
        pieces in 1u8..6,
        with_size in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let whole = [&[0xff, 0xff, 0xff, 0xff][..], &payload].concat();
        // Real pieces are ~1250 bytes; the first must at least hold the 4-byte header.
        let chunk = whole.len().div_ceil(usize::from(pieces)).max(8);
        let mut datagrams: Vec<Vec<u8>> = whole
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                let mut dg = vec![0xfe, 0xff, 0xff, 0xff];
                dg.extend(9i32.to_le_bytes());
                dg.extend([whole.chunks(chunk).count() as u8, n as u8]);
                if with_size {
                    dg.extend(1248u16.to_le_bytes());
                }
                dg.extend(part);
                dg
            })
            .collect();
        let len = datagrams.len();
        datagrams.rotate_left((seed as usize) % len);
        let mut assembler = SplitAssembler::new();
        let mut result = None;
        for dg in &datagrams {
            result = assembler.push(dg).unwrap();
        }
        prop_assert_eq!(result, Some(whole));
    }

    #[test]
    fn a2s_info_round_trip(
        name in "[^\u{0}]{0,40}", map in "[a-z_0-9]{0,20}", app_id in any::<u16>(),
        players in any::<u8>(), port in proptest::option::of(any::<u16>()),
    ) {
        prop_assume!(app_id != 2400);
        let mut body = vec![17];
        for s in [name.as_str(), map.as_str(), "folder", "game"] {
            body.extend(s.as_bytes());
            body.push(0);
        }
        body.extend(app_id.to_le_bytes());
        body.extend([players, 64, 0, b'd', b'w', 1, 0]);
        body.extend(b"1.2.3\0");
        if let Some(port) = port {
            body.push(0x80);
            body.extend(port.to_le_bytes());
        }
        let info = parse_info(&body).unwrap();
        prop_assert_eq!(&info.name, &name);
        prop_assert_eq!(&info.map, &map);
        prop_assert_eq!((info.app_id, info.players, info.game_port), (app_id, players, port));
        prop_assert!(info.visibility && !info.vac);
        // Any truncation is an error, never a panic (except cutting exactly before the
        // optional extra data, which is a valid shorter reply).
        for cut in 0..body.len() {
            let _ = parse_info(&body[..cut]);
        }
    }
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        any::<f64>().prop_map(|n| serde_json::json!(n)),
        ".{0,20}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("text".to_owned()),
                    Just("extra".to_owned()),
                    Just("online".to_owned()),
                    Just("sample".to_owned()),
                    ".{0,6}"
                ],
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
