fn main() {
    for p in std::env::args().skip(1) {
        let b = std::fs::read(&p).unwrap();
        let a = pixeld_imaging::analyze(&b, &Default::default()).unwrap();
        println!("{p} {:?}", a.kind);
    }
}
