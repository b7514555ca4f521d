//! Adversarial guest: panics (a trap) in validation.

wit_bindgen::generate!({ path: "../../../wit/plugin-0.1.0", world: "validator" });

struct Trap;

impl Guest for Trap {
    fn check_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn validate(deployment: Deployment, _config: String) -> Result<Vec<Violation>, String> {
        let first = &deployment.objects[deployment.objects.len() + 1];
        Ok(vec![Violation {
            object: None,
            message: first.name.clone(),
            path: None,
        }])
    }
}

export!(Trap);
