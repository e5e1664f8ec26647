// BastionServer
