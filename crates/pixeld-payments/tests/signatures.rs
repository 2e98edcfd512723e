//! The signing helpers other crates' tests rely on, checked against an HMAC written here
//! from RFC 2104, so a bug shared by the helpers and the verifier cannot hide.

use pixeld_payments::testing::{
    razorpay_payment_signature, razorpay_signature, stripe_signature_header,
};
use sha2::{Digest, Sha256};

/// HMAC-SHA256 straight from RFC 2104: H((K ^ opad) || H((K ^ ipad) || message)).
fn rfc2104_hmac_sha256(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        block_key[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let inner_key: Vec<u8> = block_key.iter().map(|b| b ^ 0x36).collect();
    let outer_key: Vec<u8> = block_key.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::digest([&inner_key[..], message].concat());
    let outer = Sha256::digest([&outer_key[..], &inner[..]].concat());
    hex::encode(outer)
}

#[test]
fn the_reference_hmac_matches_rfc_4231() {
    // RFC 4231 test case 2.
    assert_eq!(
        rfc2104_hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // RFC 4231 test case 6: a key longer than the block is hashed first.
    assert_eq!(
        rfc2104_hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        ),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn a_stripe_signature_is_hmac_of_timestamp_dot_body() {
    let body = br#"{"id":"evt_1","object":"event","type":"checkout.session.completed"}"#;
    let secret = "whsec_pixeld_test_secret";

    let header = stripe_signature_header(secret, 1751400000, body);

    let expected = rfc2104_hmac_sha256(
        secret.as_bytes(),
        &[&b"1751400000."[..], &body[..]].concat(),
    );
    assert_eq!(header, format!("t=1751400000,v1={expected}"));
}

#[test]
fn a_razorpay_webhook_signature_is_hmac_of_the_raw_body() {
    let body = br#"{"entity":"event","event":"payment.captured","payload":{}}"#;

    assert_eq!(
        razorpay_signature("pixeld-razorpay-webhook-secret", body),
        rfc2104_hmac_sha256(b"pixeld-razorpay-webhook-secret", body)
    );
}

#[test]
fn a_razorpay_payment_signature_is_hmac_of_order_pipe_payment() {
    assert_eq!(
        razorpay_payment_signature("key-secret", "order_IluGWxBm9U8zJ8", "pay_29QQoUBi66xm2f"),
        rfc2104_hmac_sha256(b"key-secret", b"order_IluGWxBm9U8zJ8|pay_29QQoUBi66xm2f")
    );
}
