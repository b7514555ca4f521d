//! Adversarial guest: imports a function the host does not provide (it must be refused).

wit_bindgen::generate!({ path: "wit", world: "validator" });

struct UnknownImport;

impl Guest for UnknownImport {
    fn check_config(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn validate(_config: String) -> Result<Vec<String>, String> {
        Ok(vec![format!("{}", open_socket("example.com", 443))])
    }
}

export!(UnknownImport);
