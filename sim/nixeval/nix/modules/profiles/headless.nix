# Stub of nixpkgs' module: no console login prompts beyond the first.
{ lib, ... }:
{
  boot.kernelParams = [ "panic=1" "boot.panic_on_fail" ];
}
