fn main() -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", blaxel_operator::crd::to_yaml(&blaxel_operator::crd::all())?);
    Ok(())
}
