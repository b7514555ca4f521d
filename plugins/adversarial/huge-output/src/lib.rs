//! Adversarial guest: answers with megabytes of violations (the output cap must refuse them).

wit_bindgen::generate!({ path: "../../../wit/plugin-0.1.0", world: "validator" });

struct HugeOutput;

impl Guest for HugeOutput {
    fn check_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn validate(_deployment: Deployment, _config: String) -> Result<Vec<Violation>, String> {
        let message = "x".repeat(200);
        Ok((0..20_000)
            .map(|_| Violation {
                object: None,
                message: message.clone(),
                path: None,
            })
            .collect())
    }
}

export!(HugeOutput);
