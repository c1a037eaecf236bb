//! The `callflowd` binary: see `callflowd --help`.

fn main() {
    println!("callflowd: under construction");
}
