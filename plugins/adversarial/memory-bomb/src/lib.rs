//! Adversarial guest: allocates without end (the memory limit must stop it).

wit_bindgen::generate!({ path: "../../../wit/plugin-0.1.0", world: "validator" });

struct MemoryBomb;

impl Guest for MemoryBomb {
    fn check_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn validate(_deployment: Deployment, _config: String) -> Result<Vec<Violation>, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![7u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

export!(MemoryBomb);
