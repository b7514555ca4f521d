//! Adversarial guest: validation never ends (fuel and the epoch deadline must stop it).

wit_bindgen::generate!({ path: "../../../wit/plugin-0.1.0", world: "validator" });

struct Spin;

impl Guest for Spin {
    fn check_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn validate(_deployment: Deployment, _config: String) -> Result<Vec<Violation>, String> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export!(Spin);
