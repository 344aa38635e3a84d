"""The console's parameter tree shows secret parameters as ``***`` to every role (issue 11 item 3)."""

from __future__ import annotations

from urllib.parse import quote

from tests.console.conftest import ConsoleHarness

PSK = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.KeyPassphrase"
CR_PASSWORD = "InternetGatewayDevice.ManagementServer.ConnectionRequestPassword"


async def test_the_parameter_tree_never_shows_a_secret(console: ConsoleHarness) -> None:
    device_id = await console.device("TREE-SECRET")
    await console.services.repositories.parameters.set_values(
        device_id,
        [
            (PSK, "wifi-key-in-clear", "xsd:string"),
            (CR_PASSWORD, "cr-password-in-clear", "xsd:string"),
            ("InternetGatewayDevice.ManagementServer.URL", "http://cpe:url-password@acs.example/", "xsd:string"),
            ("InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID", "home-net", "xsd:string"),
        ],
        console.services.clock(),
    )
    for role in ("viewer", "operator", "admin"):
        user = await console.login(role)
        url = console.url(f"/devices/{quote(device_id, safe='')}/parameters")
        async with user.http.get(url) as response:
            assert response.status == 200
            page = await response.text()
        assert "home-net" in page, "the tree is shown"
        for secret in ("wifi-key-in-clear", "cr-password-in-clear", "url-password"):
            assert secret not in page, (role, secret)
        assert page.count('<span class="pvalue" >***</span>') == 3  # the key, the password, the URL
