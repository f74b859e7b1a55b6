/** Renders what vome is, with no session and no database. */
export default function About() {
  return (
    <>
      <h1>About vome</h1>
      <p>
        vome runs Home Assistant for your household: your own Home Assistant OS virtual machine, its own HTTPS address, VPN access home and encrypted
        backups.
      </p>
      <p>
        <a href="/signin">Sign in</a>
      </p>
    </>
  );
}
