//! Process start to the first Runtime API `/next` with no work in between: spawn, exec,
//! dynamic loading, libc and the Rust runtime. What any Rust function pays here.

use std::io::{Read, Write};
use std::net::TcpStream;

fn main() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").expect("AWS_LAMBDA_RUNTIME_API");
    let mut stream = TcpStream::connect(&api).expect("the Runtime API");
    let request =
        format!("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut answer = [0u8; 1];
    let _ = stream.read(&mut answer);
}
